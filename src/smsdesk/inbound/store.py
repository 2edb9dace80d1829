"""Keeping inbound SMS as they arrive, whichever way they came (webhook or a provider's link).

They are stored raw and pending, before anything else happens to them; the pipeline
(`inbound.pipeline`) processes them afterwards, so nothing that reached us can be lost to a
processing error or a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from smsdesk.domain.ids import new_id
from smsdesk.domain.sms import InboundSms
from smsdesk.store.tables import inbound_messages
from smsdesk.store.writer import Writer

log = logging.getLogger(__name__)

# A provider's message id longer than the column is cut; the rest of the row is kept whole.
_ID_LENGTH = 100
_NUMBER_LENGTH = 40


def inbound_row(module: str, sms: InboundSms, now: float) -> dict[str, Any]:
    return {
        "id": new_id(),
        "module": module,
        "provider_message_id": (sms.provider_message_id or new_id())[:_ID_LENGTH],
        "sender": sms.sender.strip()[:_NUMBER_LENGTH],
        "recipient": sms.recipient.strip()[:_NUMBER_LENGTH],
        "body": sms.text,
        "received_at": sms.received_at or now,
        "state": "pending",
        "session_key": sms.session_key,
    }


def insert_new(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert the rows whose (module, provider id) is not stored yet; return how many were."""
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(inbound_messages)
        .on_conflict_do_nothing(index_elements=["module", "provider_message_id"])
        .returning(inbound_messages.c.id)
    )
    # rowcount is not reliable for many rows at once; the returned ids are.
    return len(conn.execute(statement, list(rows)).all())


async def store_inbound(
    writer: Writer,
    module: str,
    received: Sequence[InboundSms],
    now: float,
    *,
    stored: Callable[[], None] | None = None,
) -> int:
    """Store each message once: a provider repeating one (same id) is ignored, not an error.

    Returns how many were new; `stored` is called after they are committed.
    """
    rows = [inbound_row(module, sms, now) for sms in received]
    if not rows:
        return 0
    count = await writer.run(lambda conn: insert_new(conn, rows))
    if count < len(rows):
        log.info(
            "duplicate inbound message ignored",
            extra={"sms_module": module, "duplicates": len(rows) - count},
        )
    if count and stored is not None:
        stored()
    return count
