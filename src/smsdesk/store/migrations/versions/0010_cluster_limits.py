"""Rate limits that hold across a cluster: one bucket row per connection, shared by every
process on the database (tokens, when they were last refilled, and a throttling pause).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connection_limits",
        sa.Column("connection_id", sa.String(40), primary_key=True),
        sa.Column("rate", sa.Double, nullable=False),
        sa.Column("burst", sa.Double, nullable=False),
        sa.Column("tokens", sa.Double, nullable=False),
        sa.Column("refilled_at", sa.Double, nullable=False),
        sa.Column("paused_until", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("connection_limits")
