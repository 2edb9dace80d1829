"""Inbound SMS whose text carried control characters: marked, as those were replaced.

A provider can deliver a text with NUL or other control characters, which PostgreSQL cannot
store and nobody can read; they are replaced with U+FFFD on arrival and the row says so.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(
            sa.Column("text_altered", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("text_altered")
