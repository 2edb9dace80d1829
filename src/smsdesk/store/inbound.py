"""Inbound SMS in the database: kept as they arrive, then marked with what they became.

They are stored raw and pending, whichever way they came (webhook or a provider's link),
before anything else happens to them; the pipeline (`inbound.pipeline`) processes them
afterwards, so nothing that reached us can be lost to a processing error or a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from smsdesk.domain.ids import new_id
from smsdesk.domain.sms import InboundSms
from smsdesk.domain.text import clean_incoming
from smsdesk.store.tables import inbound_messages, request_messages
from smsdesk.store.writer import Writer

log = logging.getLogger(__name__)

# A provider's message id longer than the column is cut; the rest of the row is kept whole.
_ID_LENGTH = 100
_NUMBER_LENGTH = 40


def _clean(value: str) -> str:
    return clean_incoming(value)[0]


def inbound_row(module: str, sms: InboundSms, now: float) -> dict[str, Any]:
    """The pending row of a received SMS; values longer than their column are cut.

    Control characters (NUL, which PostgreSQL cannot store, and the others) are replaced with
    U+FFFD rather than refused: the provider would only retry. A changed text is marked.
    """
    body, altered = clean_incoming(sms.text)
    return {
        "id": new_id(),
        "module": _clean(module),
        "provider_message_id": _clean(sms.provider_message_id or new_id())[:_ID_LENGTH],
        "sender": _clean(sms.sender.strip())[:_NUMBER_LENGTH],
        "recipient": _clean(sms.recipient.strip())[:_NUMBER_LENGTH],
        "body": body,
        "received_at": sms.received_at or now,
        "state": "pending",
        "session_key": _clean(sms.session_key) if sms.session_key else sms.session_key,
        "text_altered": altered,
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
    connection_id: str | None = None,
) -> int:
    """Store each message once: a provider repeating one (same id) is ignored, not an error.

    Returns how many were new; `stored` is called after they are committed. `connection_id`
    names the connection that received them, when known.
    """
    rows = [{**inbound_row(module, sms, now), "connection_id": connection_id} for sms in received]
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


def _inbound_conditions(
    state: str | None, sender: str | None, sender_part: str | None, text: str | None
) -> list[sa.ColumnElement[bool]]:
    found: list[sa.ColumnElement[bool]] = []
    if state is not None:
        found.append(inbound_messages.c.state == state)
    if sender:
        found.append(inbound_messages.c.sender == sender)
    if sender_part:
        found.append(inbound_messages.c.sender.contains(sender_part, autoescape=True))
    if text:
        found.append(inbound_messages.c.body.icontains(text, autoescape=True))
    return found


def list_inbound(
    conn: Connection,
    *,
    state: str | None = None,
    sender: str | None = None,
    before: str | None = None,
    limit: int,
    sender_part: str | None = None,
    text: str | None = None,
) -> list[sa.Row[Any]]:
    """Newest first, paged by id; `state`, `sender` (as received), a part of the sender and a
    part of the text (any case) narrow it, None: any."""
    query = sa.select(inbound_messages).where(
        *_inbound_conditions(state, sender, sender_part, text)
    )
    if before:
        query = query.where(inbound_messages.c.id < before)
    return list(conn.execute(query.order_by(inbound_messages.c.id.desc()).limit(limit)).all())


def count_inbound(
    conn: Connection,
    *,
    state: str | None = None,
    sender_part: str | None = None,
    text: str | None = None,
) -> int:
    """How many inbound messages match (by state alone it is read from ix_inbound_state)."""
    query = (
        sa.select(sa.func.count())
        .select_from(inbound_messages)
        .where(*_inbound_conditions(state, None, sender_part, text))
    )
    return int(conn.execute(query).scalar_one())


def get_inbound(conn: Connection, inbound_id: str) -> sa.Row[Any] | None:
    """One inbound message, whatever its state, or None."""
    return conn.execute(
        sa.select(inbound_messages).where(inbound_messages.c.id == inbound_id)
    ).first()


def stored_id(conn: Connection, module: str, provider_message_id: str) -> str:
    """The id of the inbound message stored for a provider's message id."""
    found = conn.execute(
        sa.select(inbound_messages.c.id).where(
            inbound_messages.c.module == module,
            inbound_messages.c.provider_message_id == provider_message_id,
        )
    ).scalar_one()
    return str(found)


def claim_pending(conn: Connection, limit: int) -> list[sa.Row[Any]]:
    """Pending inbound messages, oldest first; rows another process is handling are skipped."""
    return list(
        conn.execute(
            sa.select(inbound_messages)
            .where(inbound_messages.c.state == "pending")
            .order_by(inbound_messages.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
    )


def pending_by_id(conn: Connection, inbound_id: str) -> list[sa.Row[Any]]:
    """The inbound message if it is still pending (a list of it), else an empty list."""
    return list(
        conn.execute(
            sa.select(inbound_messages).where(
                inbound_messages.c.id == inbound_id, inbound_messages.c.state == "pending"
            )
        ).all()
    )


def pending_count(conn: Connection) -> int:
    """How many inbound messages wait to be processed."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(inbound_messages.c.state == "pending")
        ).scalar_one()
    )


def record_outcomes(conn: Connection, updates: Sequence[dict[str, Any]], now: float) -> None:
    """Mark processed messages (`iid`) with state, content, customer, request and reason."""
    if updates:
        conn.execute(
            inbound_messages.update()
            .where(inbound_messages.c.id == sa.bindparam("iid"))
            .values(
                state=sa.bindparam("state"),
                content=sa.bindparam("content"),
                customer_id=sa.bindparam("customer_id"),
                request_id=sa.bindparam("request_id"),
                reason=sa.bindparam("reason"),
                processed_at=now,
            ),
            list(updates),
        )


def mark_failed(conn: Connection, inbound_id: str, reason: str) -> None:
    """Mark a message that could not be processed invalid (if it is still pending)."""
    conn.execute(
        inbound_messages.update()
        .where(inbound_messages.c.id == inbound_id, inbound_messages.c.state == "pending")
        .values(state="invalid", reason=reason)
    )


def mark_joined(
    conn: Connection,
    inbound_id: str,
    *,
    content: str,
    customer_id: str,
    request_id: str,
    now: float,
) -> None:
    """Mark a message an administrator added to a request as part of that request."""
    conn.execute(
        inbound_messages.update()
        .where(inbound_messages.c.id == inbound_id)
        .values(
            state="request",
            content=content,
            customer_id=customer_id,
            request_id=request_id,
            processed_at=now,
        )
    )


def mark_deleted(conn: Connection, inbound_id: str, now: float) -> None:
    """Take a message off the lists; the row is kept, marked deleted, for audit."""
    conn.execute(
        inbound_messages.update()
        .where(inbound_messages.c.id == inbound_id)
        .values(state="deleted", processed_at=now)
    )


def mark_deleted_many(conn: Connection, inbound_ids: Sequence[str], state: str, now: float) -> int:
    """Mark deleted those of the messages that are still in `state`; how many were."""
    if not inbound_ids:
        return 0
    done = conn.execute(
        inbound_messages.update()
        .where(inbound_messages.c.id.in_(list(inbound_ids)), inbound_messages.c.state == state)
        .values(state="deleted", processed_at=now)
    ).rowcount
    return int(done)


def mark_entry_assigned(conn: Connection, inbound_id: str, by: str) -> None:
    """Mark the conversation entry of an inbound SMS as added from the unrecognised list."""
    conn.execute(
        request_messages.update()
        .where(request_messages.c.inbound_id == inbound_id)
        .values(assigned_by=by[:100])
    )
