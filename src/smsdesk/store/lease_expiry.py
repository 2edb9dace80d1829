"""Messages whose dispatcher's lease ran out: sent again only when nothing shows the provider
took them.

A dispatcher that dies (or freezes) between a provider's answer and recording it leaves the
message *sending*. When its lease runs out the message is looked at before it is queued again:

- a delivery report that names it was kept aside (it came while the message was still
  *sending*; for modules whose provider id is our message id: Kannel, CM, CPSMS): the message
  becomes *sent* and the report is applied. Not sent again;
- its connection's provider can be asked by our id (`askable`): the message stays *sending*,
  leased to the caller, who asks and then calls `settle_asked`;
- otherwise nothing shows the provider took it: queued again.

A report that names a message already queued again (it came after the lease ran out, before
the next attempt) is proof as well: `reports.apply_reports` adopts the message as sent then.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.domain.message import Status
from smsdesk.events import EventSink
from smsdesk.store.reports import ReportTally, apply_early_reports
from smsdesk.store.tables import IS_SENDING, messages, unmatched_reports
from smsdesk.store.timeline import EVENT_COLUMNS, Event, emit_status_events, insert_events

m = messages
ur = unmatched_reports

REQUEUED = "lease expired; taken up again"
PROVEN_BY_REPORT = "lease expired; a delivery report shows the provider took it: not sent again"
PROVEN_BY_ASKING = "lease expired; the provider says it took it: not sent again"
NOT_AT_PROVIDER = "lease expired; the provider has no record of it: taken up again"


@dataclass(slots=True)
class Released:
    """What one look at expired leases did."""

    proven: int = 0  # became sent: a report showed the provider took them
    requeued: int = 0  # queued again
    to_ask: list[Any] = field(default_factory=list)  # leased to the caller, to ask about
    reports: list[tuple[str, ReportTally]] = field(default_factory=list)  # reports applied


def release_expired_leases(conn: Connection, now: float) -> int:
    """Queue again (or settle as sent, with proof) the messages of dispatchers that stopped
    before recording a result; returns how many were queued again."""
    return release_expired(conn, now).requeued


def release_expired(
    conn: Connection,
    now: float,
    *,
    askable: Collection[str] = (),
    owner: str = "",
    lease_until: float = 0.0,
    events: EventSink | None = None,
) -> Released:
    """Look at every message whose lease ran out (see the module's docstring).

    `askable` names the connections whose provider can be asked by our message id; their
    messages are leased to `owner` until `lease_until` instead of being queued again.
    """
    expired = list(
        conn.execute(
            sa.select(*EVENT_COLUMNS, m.c.connection_id, m.c.attempts)
            .where(IS_SENDING, m.c.lease_until < now)
            .with_for_update(skip_locked=True)
        ).all()
    )
    released = Released()
    if not expired:
        return released
    proof = _reported(conn, expired)
    proven = [row for row in expired if (row.module, row.id) in proof]
    rest = [row for row in expired if (row.module, row.id) not in proof]
    released.to_ask = [row for row in rest if row.connection_id in askable]
    requeue = [row for row in rest if row.connection_id not in askable]
    if proven:
        released.proven = len(proven)
        _mark_sent(conn, proven, {row.id: row.id for row in proven}, PROVEN_BY_REPORT, now, events)
        released.reports = apply_early_reports(
            conn, {row.id: row.id for row in proven}, now, events
        )
    if released.to_ask:
        conn.execute(
            m.update()
            .where(m.c.id.in_([row.id for row in released.to_ask]))
            .values(lease_owner=owner, lease_until=lease_until, updated_at=now)
        )
    released.requeued = _requeue(conn, [row.id for row in requeue], REQUEUED, now)
    return released


def settle_asked(
    conn: Connection,
    owner: str,
    taken: Mapping[str, str],
    unknown: Sequence[str],
    now: float,
    events: EventSink | None = None,
) -> Released:
    """Record what the provider said about messages leased to `owner` for asking: those it
    took (`taken`: our id → its id) are sent, the ones it does not know are queued again."""
    ids = [*taken, *unknown]
    held = {
        row.id: row
        for row in conn.execute(
            sa.select(*EVENT_COLUMNS)
            .where(m.c.id.in_(ids), m.c.status == Status.SENDING.value, m.c.lease_owner == owner)
            .with_for_update()
        )
    }
    released = Released()
    proven = [held[i] for i in taken if i in held]
    if proven:
        released.proven = len(proven)
        provider_ids = {row.id: taken[row.id] for row in proven}
        _mark_sent(conn, proven, provider_ids, PROVEN_BY_ASKING, now, events)
        released.reports = apply_early_reports(
            conn, {pid: mid for mid, pid in provider_ids.items()}, now, events
        )
    released.requeued = _requeue(conn, [i for i in unknown if i in held], NOT_AT_PROVIDER, now)
    return released


def _reported(conn: Connection, rows: Sequence[Any]) -> set[tuple[str, str]]:
    """(module, message id) of the rows a kept-aside report names by our id."""
    found = conn.execute(
        sa.select(ur.c.module, ur.c.provider_message_id).where(
            ur.c.provider_message_id.in_([row.id for row in rows])
        )
    ).all()
    return {(row.module, row.provider_message_id) for row in found}


def _mark_sent(
    conn: Connection,
    rows: Sequence[Any],
    provider_ids: Mapping[str, str],
    detail: str,
    now: float,
    events: EventSink | None,
) -> None:
    for row in rows:
        conn.execute(
            m.update()
            .where(m.c.id == row.id)
            .values(
                status=Status.SENT.value,
                provider_message_id=provider_ids[row.id],
                sent_at=now,
                lease_owner=None,
                lease_until=None,
                error=None,
                updated_at=now,
            )
        )
    insert_events(
        conn,
        (Event(row.id, now, Status.SENT.value, "dispatcher", detail=detail) for row in rows),
    )
    emit_status_events(conn, events, ((row, Status.SENT.value, None) for row in rows), now)


def _requeue(conn: Connection, ids: Sequence[str], detail: str, now: float) -> int:
    if not ids:
        return 0
    conn.execute(
        m.update()
        .where(m.c.id.in_(ids), m.c.status == Status.SENDING.value)
        .values(
            status=Status.QUEUED.value,
            lease_owner=None,
            lease_until=None,
            next_attempt_at=now,
            updated_at=now,
        )
    )
    insert_events(
        conn, (Event(i, now, Status.QUEUED.value, "dispatcher", detail=detail) for i in ids)
    )
    return len(ids)
