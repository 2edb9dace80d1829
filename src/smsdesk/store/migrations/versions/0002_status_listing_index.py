"""An index for listing messages of one status newest first (the outbox view).

Without it the database reads every message of that status and sorts them: 126 ms for the
first page of a 100,000-message backlog.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_status_id", "messages", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_messages_status_id", table_name="messages")
