"""Data lifecycle: the jobs that keep data only as long as the SMS configuration says."""
