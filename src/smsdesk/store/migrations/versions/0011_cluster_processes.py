"""The running processes of the installation: each rewrites its row every few seconds (role,
the once-per-cluster jobs it leads, the messages it holds leased), for `smsdesk cluster status`.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_processes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("jobs", sa.Text, nullable=False),
        sa.Column("leased", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cluster_processes")
