"""A team at work: groups and their members, routing rules, owners, reply templates, read
marks, who added an SMS from the unrecognised list to a conversation, agents' contact details
and notification choices, notifications, and the live feed.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.String(200), nullable=False, server_default=""),
        sa.Column("round_robin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("time_zone", sa.String(60), nullable=False, server_default="UTC"),
        sa.Column("hours", sa.Text, nullable=False, server_default="{}"),
        sa.Column("holidays", sa.Text, nullable=False, server_default="[]"),
        sa.Column("out_of_hours_reply", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.UniqueConstraint("name", name="uq_groups_name"),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(26), primary_key=True),
        sa.Column("user_id", sa.Integer, primary_key=True),
        sa.Column("last_assigned_at", sa.Double),
    )
    op.create_index("ix_group_members_user", "group_members", ["user_id"])
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("value", sa.String(100), nullable=False),
        sa.Column("group_id", sa.String(26), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "reply_templates",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.UniqueConstraint("name", "language", name="uq_reply_templates_name_language"),
    )
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("owner_id", sa.Integer))
        batch.add_column(sa.Column("group_id", sa.String(26)))
        batch.add_column(sa.Column("started_by", sa.Integer))
        batch.add_column(
            sa.Column("out_of_hours", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("out_of_hours_period", sa.String(40)))
        batch.add_column(sa.Column("last_customer_message_at", sa.Double))
    op.create_index("ix_requests_owner", "requests", ["owner_id", "status"])
    op.create_index("ix_requests_group", "requests", ["group_id", "status"])
    # Existing requests: the customer's last message is their newest inbound entry, so the
    # Waiting and unread marks are right from the start.
    op.execute(
        "UPDATE requests SET last_customer_message_at = (SELECT max(m.at) FROM request_messages m"
        " WHERE m.request_id = requests.id AND m.direction = 'in')"
    )
    with op.batch_alter_table("request_messages") as batch:
        batch.add_column(sa.Column("assigned_by", sa.String(100)))
    op.create_table(
        "request_reads",
        sa.Column("request_id", sa.String(26), primary_key=True),
        sa.Column("user_id", sa.Integer, primary_key=True),
        sa.Column("seen_at", sa.Double, nullable=False),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(200)))
        batch.add_column(sa.Column("phone", sa.String(20)))
        batch.add_column(sa.Column("time_zone", sa.String(60)))
        batch.add_column(sa.Column("notify", sa.Text, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("last_active_at", sa.Double))
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("request_id", sa.String(26)),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Double, nullable=False),
        sa.Column("lease_until", sa.Double),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("sent_at", sa.Double),
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])
    op.create_table(
        "live_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("key", sa.String(64)),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_live_events_at", "live_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_live_events_at", table_name="live_events")
    op.drop_table("live_events")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("users") as batch:
        for name in ("last_active_at", "notify", "time_zone", "phone", "email"):
            batch.drop_column(name)
    op.drop_table("request_reads")
    with op.batch_alter_table("request_messages") as batch:
        batch.drop_column("assigned_by")
    op.drop_index("ix_requests_group", table_name="requests")
    op.drop_index("ix_requests_owner", table_name="requests")
    with op.batch_alter_table("requests") as batch:
        for name in (
            "last_customer_message_at",
            "out_of_hours_period",
            "out_of_hours",
            "started_by",
            "group_id",
            "owner_id",
        ):
            batch.drop_column(name)
    op.drop_table("reply_templates")
    op.drop_table("routing_rules")
    op.drop_index("ix_group_members_user", table_name="group_members")
    op.drop_table("group_members")
    op.drop_table("groups")
