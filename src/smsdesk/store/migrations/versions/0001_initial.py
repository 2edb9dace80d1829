"""The initial schema: messages and their timeline, settings, API keys, idempotency.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("module", sa.String(40), nullable=False),
        sa.Column("recipient", sa.String(20), nullable=False),
        sa.Column("sender", sa.String(16), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("encoding", sa.String(4), nullable=False),
        sa.Column("segments", sa.SmallInteger, nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("next_attempt_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("scheduled_at", sa.Double),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.Double),
        sa.Column("provider_message_id", sa.String(100)),
        sa.Column("status_code", sa.String(100)),
        sa.Column("error", sa.Text),
        sa.Column("sent_at", sa.Double),
        sa.Column("final_at", sa.Double),
        sa.Column("reference", sa.String(100)),
        sa.Column("api_key_id", sa.String(26)),
        sa.Column("is_test", sa.Boolean, nullable=False),
        sa.Column("delivery_report", sa.Boolean, nullable=False),
    )
    op.create_index("ix_messages_claim", "messages", ["status", "module", "priority", "id"])
    op.create_index("ix_messages_lease", "messages", ["status", "lease_until"])
    op.create_index("ix_messages_provider_id", "messages", ["module", "provider_message_id"])
    op.create_index("ix_messages_recipient", "messages", ["recipient"])
    op.create_table(
        "message_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(26), nullable=False),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("applied", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("code", sa.String(100)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_message_events_message", "message_events", ["message_id", "id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("api_key_id", sa.String(26), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("status_code", sa.SmallInteger, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(50), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("revoked_at", sa.Double),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("module", sa.String(40), nullable=False),
        sa.Column("provider_message_id", sa.String(100), nullable=False),
        sa.Column("sender", sa.String(40), nullable=False),
        sa.Column("recipient", sa.String(40), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.UniqueConstraint("module", "provider_message_id", name="uq_inbound_provider_id"),
    )
    op.create_table(
        "unmatched_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("module", sa.String(40), nullable=False),
        sa.Column("provider_message_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("code", sa.String(100)),
        sa.Column("received_at", sa.Double, nullable=False),
    )
    op.create_index(
        "ix_unmatched_provider_id", "unmatched_reports", ["module", "provider_message_id"]
    )


def downgrade() -> None:
    for table in (
        "unmatched_reports",
        "inbound_messages",
        "api_keys",
        "settings",
        "idempotency_keys",
        "message_events",
        "messages",
    ):
        op.drop_table(table)
