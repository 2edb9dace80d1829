"""Inbound processing, customers, requests, opt-outs and outgoing webhooks.

Inbound messages stored before this revision are marked pending, so they are processed.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_FALSE = sa.false()


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("session_key", sa.String(40)))
        batch.add_column(sa.Column("request_id", sa.String(26)))
        batch.add_column(
            sa.Column("transactional", sa.Boolean, nullable=False, server_default=_FALSE)
        )
    op.create_index("ix_messages_session_key", "messages", ["session_key"])
    op.create_index("ix_messages_request", "messages", ["request_id"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("transactional", sa.Boolean, nullable=False, server_default=_FALSE)
        )
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(
            sa.Column("state", sa.String(14), nullable=False, server_default="pending")
        )
        batch.add_column(sa.Column("content", sa.Text))
        batch.add_column(sa.Column("session_key", sa.String(40)))
        batch.add_column(sa.Column("customer_id", sa.String(26)))
        batch.add_column(sa.Column("request_id", sa.String(26)))
        batch.add_column(sa.Column("reason", sa.Text))
        batch.add_column(sa.Column("processed_at", sa.Double))
    op.create_index("ix_inbound_state", "inbound_messages", ["state", "id"])
    op.create_index("ix_inbound_sender", "inbound_messages", ["sender"])
    op.create_table(
        "customers",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("created_from_sms", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "customer_numbers",
        sa.Column("number", sa.String(20), primary_key=True),
        sa.Column("customer_id", sa.String(26), nullable=False),
    )
    op.create_index("ix_customer_numbers_customer", "customer_numbers", ["customer_id"])
    op.create_table(
        "requests",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("priority", sa.String(20), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("customer_id", sa.String(26), nullable=False),
        sa.Column("session_key", sa.String(40), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("last_activity_at", sa.Double, nullable=False),
        sa.UniqueConstraint("session_key", name="uq_requests_session_key"),
    )
    op.create_index("ix_requests_customer", "requests", ["customer_id", "status"])
    op.create_index("ix_requests_status_activity", "requests", ["status", "last_activity_at"])
    op.create_table(
        "request_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(26), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("inbound_id", sa.String(26)),
        sa.Column("message_id", sa.String(26)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("author", sa.String(100)),
        sa.Column("at", sa.Double, nullable=False),
    )
    op.create_index("ix_request_messages_request", "request_messages", ["request_id", "id"])
    op.create_table(
        "opt_outs",
        sa.Column("number", sa.String(20), primary_key=True),
        sa.Column("keyword", sa.String(40)),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("inbound_id", sa.String(26)),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("subscription_id", sa.String(26), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(26), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Double, nullable=False),
        sa.Column("lease_until", sa.Double),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("delivered_at", sa.Double),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index(
        "ix_webhook_deliveries_subscription", "webhook_deliveries", ["subscription_id", "id"]
    )


def downgrade() -> None:
    for table in (
        "webhook_deliveries",
        "webhook_subscriptions",
        "opt_outs",
        "request_messages",
        "requests",
        "customer_numbers",
        "customers",
    ):
        op.drop_table(table)
    op.drop_index("ix_inbound_sender", table_name="inbound_messages")
    op.drop_index("ix_inbound_state", table_name="inbound_messages")
    with op.batch_alter_table("inbound_messages") as batch:
        for column in (
            "processed_at",
            "reason",
            "request_id",
            "customer_id",
            "session_key",
            "content",
            "state",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("transactional")
    op.drop_index("ix_messages_request", table_name="messages")
    op.drop_index("ix_messages_session_key", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        for column in ("transactional", "request_id", "session_key"):
            batch.drop_column(column)
