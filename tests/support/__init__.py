"""Launchers of the real servers the tests run against (PostgreSQL, Kannel, an SMSC, SMTP,
smsdesk itself) and helpers for driving the service; not shipped in the wheel."""
