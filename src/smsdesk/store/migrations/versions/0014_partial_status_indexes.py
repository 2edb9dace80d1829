"""The claim indexes hold only queued messages, the lease index only messages being sent.

Each status change of a message moved an entry in all three; now only the changes into and
out of those statuses do, and the claim reads an index of what waits however many finished
messages are kept.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

QUEUED_ONLY = sa.text("status = 'queued'")
SENDING_ONLY = sa.text("status = 'sending'")

INDEXES = (
    ("ix_messages_claim", ["status", "module", "priority", "id"], QUEUED_ONLY),
    ("ix_messages_claim_conn", ["status", "connection_id", "priority", "id"], QUEUED_ONLY),
    ("ix_messages_lease", ["status", "lease_until"], SENDING_ONLY),
)


def upgrade() -> None:
    for name, columns, where in INDEXES:
        op.drop_index(name, table_name="messages")
        op.create_index(name, "messages", columns, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name, columns, _ in INDEXES:
        op.drop_index(name, table_name="messages")
        op.create_index(name, "messages", columns)
