"""Mailings: the mailing itself, one row per recipient given (with its check result and, once
queued, its message), and customers' consent to mailings.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailings",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("template_id", sa.String(26)),
        sa.Column("sender", sa.String(16)),
        sa.Column("connection", sa.String(100)),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("validity_hours", sa.Double),
        sa.Column("send_window", sa.Text),
        sa.Column("throttle_per_minute", sa.Integer),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("replies", sa.String(16), nullable=False),
        sa.Column("override_consent", sa.Boolean, nullable=False),
        sa.Column("scheduled_at", sa.Double),
        sa.Column("created_by", sa.String(100)),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("started_at", sa.Double),
        sa.Column("finished_at", sa.Double),
    )
    op.create_index("ix_mailings_status", "mailings", ["status", "created_at"])
    op.create_table(
        "mailing_recipients",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("mailing_id", sa.String(26), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("given", sa.String(100), nullable=False),
        sa.Column("number", sa.String(20)),
        sa.Column("customer_id", sa.String(26)),
        sa.Column("variables", sa.Text),
        sa.Column("check_result", sa.String(12), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("time_zone", sa.String(64)),
        sa.Column("message_id", sa.String(26)),
        sa.Column("status", sa.String(12)),
        sa.Column("not_before", sa.Double),
        sa.Column("queued_at", sa.Double),
    )
    op.create_index(
        "ix_mailing_recipients_pending",
        "mailing_recipients",
        ["mailing_id", "check_result", "message_id", "id"],
    )
    op.create_index("ix_mailing_recipients_number", "mailing_recipients", ["mailing_id", "number"])
    op.create_index("ix_mailing_recipients_message", "mailing_recipients", ["message_id"])
    op.create_table(
        "mailing_consents",
        sa.Column("customer_id", sa.String(26), primary_key=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("changed_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mailing_consents")
    op.drop_table("mailing_recipients")
    op.drop_table("mailings")
