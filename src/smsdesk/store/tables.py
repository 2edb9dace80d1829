"""The database schema, as SQLAlchemy tables; Alembic migrations create it.

Times are seconds since the epoch (floats): cheap to compare and sort on SQLite and PostgreSQL
alike, and the outbox compares them on every scan.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

messages = Table(
    "messages",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("module", String(40), nullable=False),
    Column("recipient", String(20), nullable=False),
    Column("sender", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("encoding", String(4), nullable=False),
    Column("segments", SmallInteger, nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("status", String(12), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("next_attempt_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("scheduled_at", Double),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(64)),
    Column("lease_until", Double),
    Column("provider_message_id", String(100)),
    Column("status_code", String(100)),
    Column("error", Text),
    Column("sent_at", Double),
    Column("final_at", Double),
    Column("reference", String(100)),
    Column("api_key_id", String(26)),
    Column("is_test", Boolean, nullable=False, default=False),
    Column("delivery_report", Boolean, nullable=False, default=True),
)
Index("ix_messages_claim", messages.c.status, messages.c.module, messages.c.priority, messages.c.id)
Index("ix_messages_lease", messages.c.status, messages.c.lease_until)
Index("ix_messages_provider_id", messages.c.module, messages.c.provider_message_id)
Index("ix_messages_recipient", messages.c.recipient)
Index("ix_messages_status_id", messages.c.status, messages.c.id)

message_events = Table(
    "message_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(26), nullable=False),
    Column("at", Double, nullable=False),
    Column("status", String(12), nullable=False),
    Column("applied", Boolean, nullable=False, default=True),
    Column("source", String(20), nullable=False),
    Column("code", String(100)),
    Column("detail", Text),
)
Index("ix_message_events_message", message_events.c.message_id, message_events.c.id)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("api_key_id", String(26), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("response", Text, nullable=False),
    Column("status_code", SmallInteger, nullable=False),
    Column("created_at", Double, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(50), primary_key=True),
    Column("value", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", Double, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("hash", Text, nullable=False),
    Column("role", String(20), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("revoked_at", Double),
    UniqueConstraint("prefix", name="uq_api_keys_prefix"),
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("module", String(40), nullable=False),
    Column("provider_message_id", String(100), nullable=False),
    Column("sender", String(40), nullable=False),
    Column("recipient", String(40), nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", Double, nullable=False),
    UniqueConstraint("module", "provider_message_id", name="uq_inbound_provider_id"),
)

unmatched_reports = Table(
    "unmatched_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("module", String(40), nullable=False),
    Column("provider_message_id", String(100), nullable=False),
    Column("status", String(12), nullable=False),
    Column("code", String(100)),
    Column("received_at", Double, nullable=False),
)
Index(
    "ix_unmatched_provider_id", unmatched_reports.c.module, unmatched_reports.c.provider_message_id
)
