"""What people do to messages from the web interface: search, resend, cancel, delete, export.

Resend and cancel follow the domain's rules (`check_resend`, `check_cancel`) and record the
change with `change_status`, exactly like the REST API; here the row is read inside the
writer's transaction, so the check and the change see the same status.

*Delete* means: a queued message is cancelled (it keeps its row and timeline, so nobody wonders
where it went); a message in a final status is removed with its timeline. Messages that are
being sent or wait for a delivery report cannot be deleted: a later report would no longer
find them.

A bulk action (`BulkAction`) does the same to every message a search matches, in batches of
`BULK_BATCH` messages, one writer transaction each (so other writes go between them), and
leaves one audit entry with the search and the counts.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import InvalidStatusTransition
from smsdesk.domain.message import Status, check_cancel, check_resend
from smsdesk.events import EventSink
from smsdesk.store import live
from smsdesk.store.audit import AuditTrail
from smsdesk.store.hash_key import keyed_hash
from smsdesk.store.messages import change_status, get_message
from smsdesk.store.tables import message_events, messages, request_messages
from smsdesk.store.writer import Writer

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
    connection_id: str | None = None  # the connection it goes (or went) through
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
    if search.connection_id is not None:
        found.append(m.c.connection_id == search.connection_id)
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
    """Newest first, paged by id (a cursor stays stable while new messages arrive).

    With several statuses and no number, text or id to look for (those have their own
    index or read every row anyway), each status is read newest first on its own
    (`ix_messages_status_id`, `limit` rows at most) and the pages merged: as one
    `status IN (…)` SQLite read every message of those statuses and sorted them (the
    outbox's first page with 100,000 messages: 25 ms of CPU, now 2).
    """
    conditions = _conditions(search)
    if before_id is not None:
        conditions.append(m.c.id < before_id)
    statuses = search.statuses or ()
    looked_for = (search.recipient, search.recipient_digits, search.text, search.message_id)
    if len(statuses) > 1 and all(value is None for value in looked_for):
        others = _conditions(replace(search, statuses=None))
        if before_id is not None:
            others.append(m.c.id < before_id)
        newest = [
            sa.select(m.c.id).where(m.c.status == status, *others).order_by(m.c.id.desc())
            for status in statuses
        ]
        pages = [sa.select(page.c.id) for page in (q.limit(limit).subquery() for q in newest)]
        conditions = [m.c.id.in_(sa.union_all(*pages))]
    query = sa.select(m).where(*conditions)
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
        detail = f"{self.action.value} by {self.actor}"
        return act_on(conn, row, self.action, self.now, detail, self.events)


def act_on(
    conn: Connection,
    row: sa.Row[Any],
    action: Action,
    now: float,
    detail: str,
    events: EventSink | None,
) -> Outcome:
    """Resend, cancel or delete the message `row` (read in this transaction) if its status
    allows it."""
    current = Status(row.status)
    try:
        if action is Action.RESEND:
            new, done = check_resend(current), Outcome.RESENT
        elif action is Action.CANCEL or current is Status.QUEUED:
            new, done = check_cancel(current), Outcome.CANCELLED
        elif current.is_final:
            return Outcome.DELETED if delete_final(conn, row.id, now) else Outcome.NOT_ALLOWED
        else:
            return Outcome.NOT_ALLOWED
    except InvalidStatusTransition:
        return Outcome.NOT_ALLOWED
    changed = change_status(conn, row.id, current, new, now, detail, events)
    return done if changed else Outcome.NOT_ALLOWED


def delete_final(conn: Connection, message_id: str, now: float) -> bool:
    """Remove a message in a final status, its timeline and its place in a conversation;
    False if it is not final (now). Open pages hear of it live and drop it."""
    finals = [s.value for s in Status if s.is_final]
    request_id = conn.execute(sa.select(m.c.request_id).where(m.c.id == message_id)).scalar()
    removed = conn.execute(m.delete().where(m.c.id == message_id, m.c.status.in_(finals))).rowcount
    if removed:
        conn.execute(message_events.delete().where(message_events.c.message_id == message_id))
        conn.execute(request_messages.delete().where(request_messages.c.message_id == message_id))
        payload = {"status": "deleted", "deleted": True, "request_id": request_id}
        live.publish(conn, "message", message_id, payload, now)
    return bool(removed)


# -- bulk actions ----------------------------------------------------------------------------

BULK_BATCH = 500

# The statuses each action can change: a bulk action counts and touches only these.
ACTS_ON: dict[Action, tuple[str, ...]] = {
    Action.CANCEL: (Status.QUEUED.value,),
    Action.RESEND: tuple(
        s.value for s in (Status.FAILED, Status.EXPIRED, Status.UNDELIVERED, Status.CANCELLED)
    ),
    Action.DELETE: (Status.QUEUED.value, *sorted(s.value for s in Status if s.is_final)),
}
BULK_AUDITED = {
    Action.CANCEL: "message.bulk_cancelled",
    Action.RESEND: "message.bulk_resent",
    Action.DELETE: "message.bulk_deleted",
}


def bulk_search(search: MessageSearch, action: Action) -> MessageSearch:
    """The search narrowed to the messages `action` can change."""
    allowed = ACTS_ON[action]
    if search.statuses is None:
        return replace(search, statuses=allowed)
    return replace(search, statuses=tuple(s for s in search.statuses if s in allowed))


def count_messages(conn: Connection, search: MessageSearch) -> int:
    """How many messages match (the indexes on status and created_at serve the usual filters)."""
    query = sa.select(sa.func.count()).select_from(m).where(*_conditions(search))
    return int(conn.execute(query).scalar_one())


def search_details(search: MessageSearch, key: bytes) -> dict[str, Any]:
    """The search for the audit trail: numbers and texts as keyed hashes, never as typed."""
    details: dict[str, Any] = {}
    for name in ("statuses", "module", "connection_id", "priority", "since", "until", "message_id"):
        value = getattr(search, name)
        if value is not None:
            details[name] = list(value) if isinstance(value, tuple) else value
    for name in ("recipient", "recipient_digits", "text"):
        value = getattr(search, name)
        if value is not None:
            details[f"{name}_hash"] = keyed_hash(key, value)
    return details


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What a bulk action did: how many messages it changed, and how many it found changed
    meanwhile (by the dispatcher or someone else) and left alone."""

    action: Action
    done: int
    skipped: int


@dataclass(frozen=True, slots=True)
class BulkAction:
    """Cancel, resend or delete every message a search matches, newest first, in batches."""

    search: MessageSearch
    action: Action
    now: float
    actor: str  # for the timelines
    trail: AuditTrail
    by: Actor
    events: EventSink | None = None
    batch: int = BULK_BATCH

    async def run(
        self, writer: Writer, progress: Callable[[int], None] | None = None
    ) -> BulkResult:
        """Batch after batch until none is full; `progress` hears how many were looked at."""
        search = bulk_search(self.search, self.action)
        tally: Counter[Outcome] = Counter()
        cursor: str | None = None
        while True:
            cursor, more = await writer.run(self._batch_job(search, cursor, tally))
            if progress is not None:
                progress(sum(tally.values()))
            if not more:
                break
        done = sum(n for outcome, n in tally.items() if outcome in AUDITED)
        return BulkResult(self.action, done, tally[Outcome.NOT_ALLOWED])

    def _batch_job(self, search: MessageSearch, cursor: str | None, tally: Counter[Outcome]) -> Any:
        def job(conn: Connection) -> tuple[str | None, bool]:
            rows = search_messages(conn, search, before_id=cursor, limit=self.batch)
            detail = f"{self.action.value} by {self.actor} (bulk)"
            found: Counter[Outcome] = Counter(
                act_on(conn, row, self.action, self.now, detail, self.events) for row in rows
            )
            tally.update(found)
            more = len(rows) == self.batch
            if not more:  # the last batch's transaction holds the one audit entry
                self._record(conn, tally)
            return (rows[-1].id if rows else cursor), more

        return job

    def _record(self, conn: Connection, tally: Counter[Outcome]) -> None:
        done = sum(n for outcome, n in tally.items() if outcome in AUDITED)
        details = {
            "filter": search_details(self.search, self.trail.key),
            "count": done,
            "skipped": tally[Outcome.NOT_ALLOWED],
        }
        if self.action is Action.DELETE:
            details["cancelled"] = tally[Outcome.CANCELLED]
        self.trail.record(conn, self.by, BULK_AUDITED[self.action], details=details)
