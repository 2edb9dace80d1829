"""An index of the SMPP module's sent messages, by the end of their validity.

The dispatcher asks every few seconds which SMPP connections still wait for a report; that
read every sent message of the module, including those whose reports will never come.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SENT_OVER_SESSION = sa.text("status = 'sent' AND module = 'smpp'")


def upgrade() -> None:
    op.create_index(
        "ix_messages_session_reports",
        "messages",
        ["status", "expires_at", "connection_id"],
        sqlite_where=SENT_OVER_SESSION,
        postgresql_where=SENT_OVER_SESSION,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_session_reports", table_name="messages")
