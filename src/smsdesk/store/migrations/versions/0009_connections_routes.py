"""Connections, routes and spend controls: provider accounts of their own, outbound routes with
failover plans, a circuit breaker per connection, per-minute connection figures, daily caps.

The selected module's settings and limits move from the "sms" settings document into the
connection "default" (secrets are copied as they are, still sealed with the installation's
key; the migration never decrypts). The other modules' fields stay parked in the document.
Messages still waiting to be sent get their connection. An existing installation's allow-list
becomes the default country plus every country it sent to in the last 90 days, so nothing it
sends today is refused after the upgrade.

Revision ID: 0009
Revises: 0007
"""

from __future__ import annotations

import json
import time
from typing import Any

import phonenumbers
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

_ENCRYPTED = "$encrypted"
_SEEN_DAYS = 90
_MESSAGE_COLUMNS = (
    "connection_id",
    "route_id",
    "route_name",
    "route_plan",
    "plan_index",
    "country",
    "tag",
    "estimated_cost",
    "cost_currency",
    "connection_attempts",
    "failovers",
)

_settings = sa.table(
    "settings",
    sa.column("key", sa.String),
    sa.column("value", sa.Text),
    sa.column("version", sa.Integer),
    sa.column("updated_at", sa.Double),
)
_connections = sa.table(
    "connections",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("module", sa.String),
    sa.column("settings", sa.Text),
    sa.column("secrets", sa.Text),
    sa.column("rate_limit", sa.Double),
    sa.column("concurrency", sa.SmallInteger),
    sa.column("failure_threshold", sa.SmallInteger),
    sa.column("cool_down_seconds", sa.Double),
    sa.column("enabled", sa.Boolean),
    sa.column("is_default", sa.Boolean),
    sa.column("version", sa.Integer),
    sa.column("created_at", sa.Double),
    sa.column("updated_at", sa.Double),
)
_health = sa.table(
    "connection_health",
    sa.column("connection_id", sa.String),
    sa.column("state", sa.String),
    sa.column("consecutive_failures", sa.Integer),
    sa.column("updated_at", sa.Double),
)
_messages = sa.table(
    "messages",
    sa.column("module", sa.String),
    sa.column("status", sa.String),
    sa.column("recipient", sa.String),
    sa.column("created_at", sa.Double),
    sa.column("connection_id", sa.String),
)


def upgrade() -> None:
    _create_tables()
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("connection_id", sa.String(40)))
        batch.add_column(sa.Column("route_id", sa.String(26)))
        batch.add_column(sa.Column("route_name", sa.String(100)))
        batch.add_column(sa.Column("route_plan", sa.Text))
        batch.add_column(
            sa.Column("plan_index", sa.SmallInteger, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("country", sa.String(2)))
        batch.add_column(sa.Column("tag", sa.String(64)))
        batch.add_column(sa.Column("estimated_cost", sa.Numeric(12, 5)))
        batch.add_column(sa.Column("cost_currency", sa.String(3)))
        batch.add_column(
            sa.Column("connection_attempts", sa.SmallInteger, nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("failovers", sa.SmallInteger, nullable=False, server_default="0")
        )
    op.create_index(
        "ix_messages_claim_conn", "messages", ["status", "connection_id", "priority", "id"]
    )
    with op.batch_alter_table("message_events") as batch:
        batch.add_column(sa.Column("connection_id", sa.String(40)))
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(sa.Column("connection_id", sa.String(40)))
    _move_default_connection()


def _create_tables() -> None:
    op.create_table(
        "connections",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("module", sa.String(40), nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("secrets", sa.Text, nullable=False),
        sa.Column("rate_limit", sa.Double, nullable=False),
        sa.Column("concurrency", sa.SmallInteger, nullable=False),
        sa.Column("failure_threshold", sa.SmallInteger, nullable=False),
        sa.Column("cool_down_seconds", sa.Double, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.UniqueConstraint("name", name="uq_connections_name"),
    )
    op.create_index(
        "uq_connections_default",
        "connections",
        ["is_default"],
        unique=True,
        sqlite_where=sa.text("is_default"),
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "connection_health",
        sa.Column(
            "connection_id",
            sa.String(26),
            sa.ForeignKey("connections.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("opened_at", sa.Double),
        sa.Column("probe_owner", sa.String(64)),
        sa.Column("probe_until", sa.Double),
        sa.Column("last_error", sa.Text),
        sa.Column("last_change_at", sa.Double),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "connection_stats",
        sa.Column("connection_id", sa.String(40), nullable=False),
        sa.Column("minute", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("not_taken", sa.Integer, nullable=False),
        sa.Column("ambiguous", sa.Integer, nullable=False),
        sa.Column("failovers", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("connection_id", "minute", name="pk_connection_stats"),
    )
    op.create_index("ix_connection_stats_minute", "connection_stats", ["minute"])
    lists = ("countries", "prefixes", "numbers", "senders", "priorities", "api_key_ids", "tags")
    op.create_table(
        "routes",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        *(sa.Column(name, sa.Text, nullable=False) for name in lists),
        sa.Column("sender_override", sa.String(16)),
        sa.Column("price_per_segment", sa.Numeric(12, 5)),
        sa.Column("currency", sa.String(3)),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.UniqueConstraint("position", name="uq_routes_position"),
    )
    op.create_table(
        "route_connections",
        sa.Column(
            "route_id",
            sa.String(26),
            sa.ForeignKey("routes.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.SmallInteger, nullable=False),
        sa.Column(
            "connection_id",
            sa.String(26),
            sa.ForeignKey("connections.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("route_id", "position", name="pk_route_connections"),
        sa.UniqueConstraint("route_id", "connection_id", name="uq_route_connections_connection"),
    )
    op.create_table(
        "spend_counters",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("api_key_id", sa.String(26), nullable=False),
        sa.Column("messages", sa.Integer, nullable=False),
        sa.Column("segments", sa.Integer, nullable=False),
        sa.Column("cost", sa.Numeric(14, 5), nullable=False),
        sa.Column("alerted", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("day", "scope", "country", "api_key_id", name="pk_spend_counters"),
    )


def _move_default_connection() -> None:
    """The selected module's fields and limits become the connection "default"."""
    bind = op.get_bind()
    now = time.time()
    row = bind.execute(
        sa.select(_settings.c.value, _settings.c.version).where(_settings.c.key == "sms")
    ).first()
    doc: dict[str, Any] = json.loads(row.value) if row is not None else {}
    module = str(doc.get("module") or "simulator")
    fields: dict[str, Any] = (doc.get("module_settings") or {}).pop(module, None) or {}
    limits: dict[str, Any] = (doc.get("limits") or {}).pop(module, None) or {}
    plain = {k: v for k, v in fields.items() if not _is_sealed(v)}
    sealed = {k: v for k, v in fields.items() if _is_sealed(v)}
    bind.execute(
        _connections.insert().values(
            id="default",
            name="default",
            module=module,
            settings=json.dumps(plain),
            secrets=json.dumps(sealed),
            rate_limit=float(limits.get("rate_limit", 0.0)),
            concurrency=int(limits.get("concurrency", 4)),
            failure_threshold=5,
            cool_down_seconds=60.0,
            enabled=True,
            is_default=True,
            version=1,
            created_at=now,
            updated_at=now,
        )
    )
    bind.execute(
        _health.insert().values(
            connection_id="default", state="closed", consecutive_failures=0, updated_at=now
        )
    )
    waiting = _messages.c.status.in_(("queued", "sending"))
    bind.execute(
        _messages.update()
        .where(waiting, _messages.c.module == module)
        .values(connection_id="default")
    )
    bind.execute(
        _messages.update()
        .where(waiting, _messages.c.module != module)
        .values(connection_id=sa.literal("module:") + _messages.c.module)
    )
    existing = (
        row is not None or bind.execute(sa.select(sa.func.count()).select_from(_messages)).scalar()
    )
    if existing:
        doc["spend"] = {"allowed_countries": _countries_in_use(bind, doc, now)}
    if row is not None or existing:
        _write_document(bind, row, doc, now)


def _is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and _ENCRYPTED in value


def _countries_in_use(bind: sa.Connection, doc: dict[str, Any], now: float) -> list[str]:
    """The default country code's countries and those of recent recipients; `*` if none."""
    countries: set[str] = set()
    code = str(doc.get("default_country_code") or "").strip().lstrip("+")
    if code.isdecimal():
        countries.update(phonenumbers.region_codes_for_country_code(int(code)))
    # One sample number per 7-digit prefix: the same prefix is the same country.
    samples = bind.execute(
        sa.select(sa.func.min(_messages.c.recipient))
        .where(_messages.c.created_at >= now - _SEEN_DAYS * 86_400)
        .group_by(sa.func.substr(_messages.c.recipient, 1, 8))
    ).scalars()
    for number in samples:
        region = _region_of(number or "")
        if region:
            countries.add(region)
    found = sorted(c for c in countries if len(c) == 2 and c.isalpha() and c != "ZZ")
    return found or ["*"]


def _region_of(number: str) -> str | None:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    if region or parsed.country_code is None:
        return region
    return phonenumbers.region_code_for_country_code(parsed.country_code)


def _write_document(bind: sa.Connection, row: Any, doc: dict[str, Any], now: float) -> None:
    value = json.dumps(doc)
    if row is None:
        bind.execute(_settings.insert().values(key="sms", value=value, version=1, updated_at=now))
    else:
        bind.execute(
            _settings.update()
            .where(_settings.c.key == "sms")
            .values(value=value, version=row.version + 1, updated_at=now)
        )


def downgrade() -> None:
    _fold_default_connection()
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("connection_id")
    with op.batch_alter_table("message_events") as batch:
        batch.drop_column("connection_id")
    op.drop_index("ix_messages_claim_conn", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        for name in reversed(_MESSAGE_COLUMNS):
            batch.drop_column(name)
    op.drop_table("spend_counters")
    op.drop_table("route_connections")
    op.drop_table("routes")
    op.drop_index("ix_connection_stats_minute", table_name="connection_stats")
    op.drop_table("connection_stats")
    op.drop_table("connection_health")
    op.drop_index("uq_connections_default", table_name="connections")
    op.drop_table("connections")


def _fold_default_connection() -> None:
    """The default connection's module, fields and limits go back into the "sms" document."""
    bind = op.get_bind()
    connection = bind.execute(
        sa.select(_connections).where(_connections.c.is_default == sa.true())
    ).first()
    row = bind.execute(
        sa.select(_settings.c.value, _settings.c.version).where(_settings.c.key == "sms")
    ).first()
    if row is None and (connection is None or connection.version == 1):
        return  # nothing was ever configured
    doc: dict[str, Any] = json.loads(row.value) if row is not None else {}
    doc.pop("spend", None)
    if connection is not None:
        doc["module"] = connection.module
        fields = {**json.loads(connection.settings), **json.loads(connection.secrets)}
        doc.setdefault("module_settings", {})[connection.module] = fields
        doc.setdefault("limits", {})[connection.module] = {
            "rate_limit": connection.rate_limit,
            "concurrency": connection.concurrency,
        }
    _write_document(bind, row, doc, time.time())
