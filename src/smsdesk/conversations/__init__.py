"""Requests (tickets) and their SMS conversations."""
