"""The table of running processes (part of the schema that `tables.py` declares)."""

from __future__ import annotations

from sqlalchemy import Column, Double, Integer, String, Table, Text

from smsdesk.store.metadata import metadata

# One row per process, rewritten every few seconds while it runs (its heartbeat); a row not
# seen for a while is a process that stopped or died. `jobs` is a JSON list of the
# once-per-cluster jobs it leads.
cluster_processes = Table(
    "cluster_processes",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("jobs", Text, nullable=False),
    Column("leased", Integer, nullable=False),
    Column("started_at", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
)
