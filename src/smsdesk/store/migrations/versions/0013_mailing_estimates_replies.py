"""Mailings, second step: each recipient's estimate (segments, cost, or the outbox's refusal)
kept from the moment it is checked, the final state of its message kept beside it, and the
replies a mailing caused; customers carry tags (to choose a mailing's audience by).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailing_recipients") as batch:
        batch.add_column(sa.Column("segments", sa.SmallInteger))
        batch.add_column(sa.Column("cost", sa.Double))
        batch.add_column(sa.Column("currency", sa.String(3)))
        batch.add_column(sa.Column("refusal", sa.Text))
        batch.add_column(sa.Column("status_code", sa.String(64)))
        batch.add_column(sa.Column("status_at", sa.Double))
    op.create_table(
        "mailing_replies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("mailing_id", sa.String(26), nullable=False),
        sa.Column("recipient_id", sa.Integer, nullable=False),
        sa.Column("inbound_id", sa.String(26), nullable=False),
        sa.Column("request_id", sa.String(26)),
        sa.Column("opt_out", sa.Boolean, nullable=False),
        sa.Column("received_at", sa.Double, nullable=False),
    )
    op.create_index("ix_mailing_replies_mailing", "mailing_replies", ["mailing_id", "received_at"])
    op.create_index("ix_mailing_replies_request", "mailing_replies", ["request_id"])
    op.create_index("ix_mailing_replies_inbound", "mailing_replies", ["inbound_id"], unique=True)
    op.create_table(
        "customer_tags",
        sa.Column("customer_id", sa.String(26), primary_key=True),
        sa.Column("tag", sa.String(50), primary_key=True),
    )
    op.create_index("ix_customer_tags_tag", "customer_tags", ["tag", "customer_id"])


def downgrade() -> None:
    op.drop_table("customer_tags")
    op.drop_table("mailing_replies")
    with op.batch_alter_table("mailing_recipients") as batch:
        for name in ("status_at", "status_code", "refusal", "currency", "cost", "segments"):
            batch.drop_column(name)
