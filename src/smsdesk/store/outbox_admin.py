"""What people do to messages from the web interface: search, resend, cancel, delete, export.

Resend and cancel follow the domain's rules (`check_resend`, `check_cancel`) and record the
change with `change_status`, exactly like the REST API; here the row is read inside the
writer's transaction, so the check and the change see the same status.

*Delete* means: a queued message is cancelled (it keeps its row and timeline, so nobody wonders
where it went); a message in a final status is removed with its timeline. Messages that are
being sent or wait for a delivery report cannot be deleted: a later report would no longer
find them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import InvalidStatusTransition
from smsdesk.domain.message import Status, check_cancel, check_resend
from smsdesk.events import EventSink
from smsdesk.store.audit import AuditTrail
from smsdesk.store.messages import change_status, get_message
from smsdesk.store.tables import message_events, messages

m = messages

# What the outbox shows unless asked for one status: still to go, or ended without reaching
# the phone (the ones someone may want to resend).
OUTBOX_STATUSES = (
    Status.QUEUED.value,
    Status.SENDING.value,
    Status.FAILED.value,
    Status.EXPIRED.value,
    Status.UNDELIVERED.value,
)


@dataclass(frozen=True, slots=True)
class MessageSearch:
    """Conditions on messages; None means "any"."""

    statuses: tuple[str, ...] | None = None
    module: str | None = None
    priority: int | None = None
    since: float | None = None
    until: float | None = None
    recipient: str | None = None  # exact E.164
    recipient_digits: str | None = None  # part of the number
    text: str | None = None  # part of the text, any case
    message_id: str | None = None  # ours or the provider's


def _conditions(search: MessageSearch) -> list[sa.ColumnElement[bool]]:
    found: list[sa.ColumnElement[bool]] = []
    if search.statuses is not None:
        found.append(m.c.status.in_(search.statuses))
    if search.module is not None:
        found.append(m.c.module == search.module)
    if search.priority is not None:
        found.append(m.c.priority == search.priority)
    if search.since is not None:
        found.append(m.c.created_at >= search.since)
    if search.until is not None:
        found.append(m.c.created_at < search.until)
    if search.recipient is not None:
        found.append(m.c.recipient == search.recipient)
    if search.recipient_digits is not None:
        found.append(m.c.recipient.contains(search.recipient_digits, autoescape=True))
    if search.text is not None:
        found.append(m.c.body.icontains(search.text, autoescape=True))
    if search.message_id is not None:
        found.append(
            sa.or_(m.c.id == search.message_id, m.c.provider_message_id == search.message_id)
        )
    return found


def search_messages(
    conn: Connection, search: MessageSearch, *, before_id: str | None, limit: int
) -> list[sa.Row[Any]]:
    """Newest first, paged by id (a cursor stays stable while new messages arrive)."""
    query = sa.select(m).where(*_conditions(search))
    if before_id is not None:
        query = query.where(m.c.id < before_id)
    return list(conn.execute(query.order_by(m.c.id.desc()).limit(limit)).all())


def iter_messages(engine: Engine, search: MessageSearch, batch: int = 500) -> Iterator[sa.Row[Any]]:
    """Every matching message, newest first, read in batches (one short transaction each)."""
    cursor: str | None = None
    while True:
        with engine.connect() as conn:
            rows = search_messages(conn, search, before_id=cursor, limit=batch)
        yield from rows
        if len(rows) < batch:
            return
        cursor = rows[-1].id


class Action(enum.StrEnum):
    RESEND = "resend"
    CANCEL = "cancel"
    DELETE = "delete"


class Outcome(enum.StrEnum):
    """What an action did; the page tells the user in words."""

    RESENT = "resent"
    CANCELLED = "cancelled"
    DELETED = "deleted"
    NOT_ALLOWED = "not_allowed"  # the message's status does not allow it
    MISSING = "missing"


AUDITED = {
    Outcome.RESENT: "message.resent",
    Outcome.CANCELLED: "message.cancelled",
    Outcome.DELETED: "message.deleted",
}


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """A writer job: resend, cancel or delete one message, checked against its status now."""

    message_id: str
    action: Action
    now: float
    actor: str
    events: EventSink | None = None
    trail: AuditTrail | None = None  # with `by`: the done action goes to the audit trail
    by: Actor | None = None

    def __call__(self, conn: Connection) -> Outcome:
        outcome = self._act(conn)
        if self.trail is not None and self.by is not None and outcome in AUDITED:
            self.trail.record(
                conn,
                self.by,
                AUDITED[outcome],
                target_kind="message",
                target_id=self.message_id,
            )
        return outcome

    def _act(self, conn: Connection) -> Outcome:
        row = get_message(conn, self.message_id)
        if row is None:
            return Outcome.MISSING
        current = Status(row.status)
        try:
            if self.action is Action.RESEND:
                return self._change(conn, current, check_resend(current), Outcome.RESENT)
            if self.action is Action.CANCEL or current is Status.QUEUED:
                return self._change(conn, current, check_cancel(current), Outcome.CANCELLED)
        except InvalidStatusTransition:
            return Outcome.NOT_ALLOWED
        if not current.is_final:
            return Outcome.NOT_ALLOWED
        return Outcome.DELETED if delete_final(conn, self.message_id) else Outcome.NOT_ALLOWED

    def _change(self, conn: Connection, current: Status, new: Status, done: Outcome) -> Outcome:
        detail = f"{self.action.value} by {self.actor}"
        changed = change_status(conn, self.message_id, current, new, self.now, detail, self.events)
        return done if changed else Outcome.NOT_ALLOWED


def delete_final(conn: Connection, message_id: str) -> bool:
    """Remove a message in a final status and its timeline; False if it is not final (now)."""
    finals = [s.value for s in Status if s.is_final]
    removed = conn.execute(m.delete().where(m.c.id == message_id, m.c.status.in_(finals))).rowcount
    if removed:
        conn.execute(message_events.delete().where(message_events.c.message_id == message_id))
    return bool(removed)
