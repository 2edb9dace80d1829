"""Keeping inbound SMS as they arrive, whichever way they came (webhook or a provider's link)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from smsdesk.domain.ids import new_id
from smsdesk.providers.base import InboundSms
from smsdesk.store.tables import inbound_messages
from smsdesk.store.writer import Writer

log = logging.getLogger(__name__)


def _insert(conn: Connection, row: dict[str, object]) -> None:
    conn.execute(inbound_messages.insert(), row)


async def store_inbound(
    writer: Writer, module: str, received: Sequence[InboundSms], now: float
) -> None:
    """Store each message once: a provider repeating one (same id) is ignored, not an error."""
    for sms in received:
        row = {
            "id": new_id(),
            "module": module,
            "provider_message_id": sms.provider_message_id,
            "sender": sms.sender,
            "recipient": sms.recipient,
            "body": sms.text,
            "received_at": sms.received_at or now,
        }
        try:
            await writer.run(partial(_insert, row=row))
        except IntegrityError:
            log.info("duplicate inbound message ignored", extra={"sms_module": module})
