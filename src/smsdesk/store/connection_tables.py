"""The tables of connections, outbound routes and spend controls (part of the schema that
`tables.py` declares; import them from either module).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from smsdesk.store.metadata import metadata

# Provider accounts: a module with its own settings. Secrets are `{field: {"$encrypted": token}}`
# (JSON), like the SMS configuration document's; exactly one connection is the default.
connections = Table(
    "connections",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("name", String(60), nullable=False),
    Column("module", String(40), nullable=False),
    Column("settings", Text, nullable=False, default="{}"),  # JSON: the non-secret fields
    Column("secrets", Text, nullable=False, default="{}"),
    Column("rate_limit", Double, nullable=False, default=0.0),
    Column("concurrency", SmallInteger, nullable=False, default=4),
    Column("failure_threshold", SmallInteger, nullable=False, default=5),
    Column("cool_down_seconds", Double, nullable=False, default=60.0),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("name", name="uq_connections_name"),
)
Index(
    "uq_connections_default",
    connections.c.is_default,
    unique=True,
    sqlite_where=text("is_default"),
    postgresql_where=text("is_default"),
)

# Each connection's circuit breaker, shared by every process.
connection_health = Table(
    "connection_health",
    metadata,
    Column(
        "connection_id",
        String(26),
        ForeignKey("connections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("state", String(10), nullable=False, default="closed"),  # closed, open or half_open
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("opened_at", Double),
    Column("probe_owner", String(64)),  # the process that may send the half-open probe
    Column("probe_until", Double),
    Column("last_error", Text),
    Column("last_change_at", Double),
    Column("updated_at", Double, nullable=False),
)

# Per connection and minute (epoch // 60): what was tried and how it went; retention purges it.
connection_stats = Table(
    "connection_stats",
    metadata,
    Column("connection_id", String(40), nullable=False),
    Column("minute", Integer, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("accepted", Integer, nullable=False, default=0),
    Column("not_taken", Integer, nullable=False, default=0),
    Column("ambiguous", Integer, nullable=False, default=0),
    Column("failovers", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("connection_id", "minute", name="pk_connection_stats"),
)
Index("ix_connection_stats_minute", connection_stats.c.minute)

# Outbound routes, tried in `position` order; the match fields are JSON lists, empty = any.
routes = Table(
    "routes",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("name", String(100), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("countries", Text, nullable=False, default="[]"),
    Column("prefixes", Text, nullable=False, default="[]"),
    Column("numbers", Text, nullable=False, default="[]"),
    Column("senders", Text, nullable=False, default="[]"),
    Column("priorities", Text, nullable=False, default="[]"),
    Column("api_key_ids", Text, nullable=False, default="[]"),
    Column("tags", Text, nullable=False, default="[]"),
    Column("sender_override", String(16)),
    Column("price_per_segment", Numeric(12, 5)),
    Column("currency", String(3)),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("position", name="uq_routes_position"),
)

# A route's connections in failover order; a connection a route names cannot be deleted.
route_connections = Table(
    "route_connections",
    metadata,
    Column(
        "route_id",
        String(26),
        ForeignKey("routes.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("position", SmallInteger, nullable=False),
    Column(
        "connection_id",
        String(26),
        ForeignKey("connections.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    PrimaryKeyConstraint("route_id", "position", name="pk_route_connections"),
    UniqueConstraint("route_id", "connection_id", name="uq_route_connections_connection"),
)

# The caps themselves are in the SMS configuration document (`domain/spend_settings.py`).
# What each cap's scope used per UTC day ('' = not that kind of scope); retention purges it.
spend_counters = Table(
    "spend_counters",
    metadata,
    Column("day", String(10), nullable=False),  # YYYY-MM-DD, UTC
    Column("scope", String(10), nullable=False),
    Column("country", String(2), nullable=False, default=""),
    Column("api_key_id", String(26), nullable=False, default=""),
    Column("messages", Integer, nullable=False, default=0),
    Column("segments", Integer, nullable=False, default=0),
    Column("cost", Numeric(14, 5), nullable=False, default=0),
    Column("alerted", Boolean, nullable=False, default=False),
    PrimaryKeyConstraint("day", "scope", "country", "api_key_id", name="pk_spend_counters"),
)

# Each connection's rate-limit bucket, shared by the processes of a PostgreSQL cluster
# (`store/rate_limits.py`): the tokens left at `refilled_at`, and the pause a provider's
# throttling answer asked for. No foreign key: implicit connections (`module:<name>`) have one.
connection_limits = Table(
    "connection_limits",
    metadata,
    Column("connection_id", String(40), primary_key=True),
    Column("rate", Double, nullable=False, default=0.0),  # messages per second when last taken
    Column("burst", Double, nullable=False, default=1.0),
    Column("tokens", Double, nullable=False, default=0.0),
    Column("refilled_at", Double, nullable=False),
    Column("paused_until", Double, nullable=False, default=0.0),
)
