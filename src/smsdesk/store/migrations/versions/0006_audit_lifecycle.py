"""The audit trail, erased opt-outs, shared login throttling and cluster-wide jobs.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("actor_kind", sa.String(10), nullable=False),
        sa.Column("actor_id", sa.String(40)),
        sa.Column("actor_name", sa.String(100), nullable=False),
        sa.Column("address", sa.String(64)),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target_kind", sa.String(20)),
        sa.Column("target_id", sa.String(64)),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action", "id"])
    op.create_table(
        "audit_anchor",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("purged_through_id", sa.Integer, nullable=False),
        sa.Column("purged_through_hash", sa.String(64), nullable=False),
    )
    op.execute(
        "INSERT INTO audit_anchor (id, last_id, last_hash, purged_through_id, "
        "purged_through_hash) VALUES (1, 0, '', 0, '')"
    )
    op.create_table(
        "erased_opt_outs",
        sa.Column("number_hash", sa.String(64), primary_key=True),
        sa.Column("keyword", sa.String(40)),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("erased_at", sa.Double, nullable=False),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("at", sa.Double, nullable=False),
    )
    op.create_index("ix_login_failures_key", "login_failures", ["username", "address", "at"])
    op.create_index("ix_login_failures_at", "login_failures", ["at"])
    op.create_table(
        "cluster_jobs",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("owner", sa.String(64)),
        sa.Column("lease_until", sa.Double),
        sa.Column("last_started_at", sa.Double),
        sa.Column("last_finished_at", sa.Double),
        sa.Column("last_result", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("cluster_jobs")
    op.drop_index("ix_login_failures_at", table_name="login_failures")
    op.drop_index("ix_login_failures_key", table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_table("erased_opt_outs")
    op.drop_table("audit_anchor")
    op.drop_index("ix_audit_log_action", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
