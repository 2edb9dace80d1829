"""Delivery reports: applied to their messages, or kept as unmatched until their send is known.

A report may reach us before the provider's answer to the send is recorded, or carry an id no
message has; either way it is stored in `unmatched_reports` instead of dropped. Reports kept
that way are applied when a send with their provider id is recorded (`apply_early_reports`),
and the rest stay listable for an administrator (`list_unmatched`).

Write functions are writer jobs (see `store.writer`): they take an open connection and never
commit themselves.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, bindparam

from smsdesk.domain.message import Status, TransitionOutcome, transition
from smsdesk.domain.sms import StatusReport
from smsdesk.events import EventSink
from smsdesk.store.bulk import execute_rows
from smsdesk.store.tables import IS_SENT, SESSION_REPORT_MODULES, messages, unmatched_reports
from smsdesk.store.timeline import EVENT_COLUMNS, Event, emit_status_events, insert_events

m = messages
ur = unmatched_reports


@dataclass(frozen=True, slots=True)
class ReportTally:
    """What became of a batch of reports; `statuses` are the new statuses applied, in order."""

    applied: int = 0
    duplicate: int = 0
    stale: int = 0
    unmatched: int = 0
    statuses: tuple[str, ...] = ()


@dataclass(slots=True)
class _Plan:
    """What a batch of reports does: message updates, timeline lines and unmatched rows."""

    updates: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[Event] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"applied": 0, "duplicate": 0, "stale": 0}
    )


def apply_reports(
    conn: Connection,
    module: str,
    reports: Sequence[StatusReport],
    now: float,
    *,
    keep_unmatched: bool = True,
    events: EventSink | None = None,
    source: str = "report",
) -> ReportTally:
    """Apply delivery reports: idempotent, order-safe, unmatched ones kept for later.

    `source` names their origin in the timeline: "report" (the provider's callback),
    "reconcile" (a status query) or "agent" (the messaging-agent API).
    """
    pids = {r.provider_message_id for r in reports}
    found_rows = _reported_messages(conn, module, pids)
    missing = pids - {row.provider_message_id for row in found_rows}
    # The send may be being recorded right now by another process: wait for it, then look
    # again, so the report is either applied or kept where that recording will see it.
    if missing and keep_unmatched and lock_provider_ids(conn, missing):
        found_rows = _reported_messages(conn, module, pids)
        missing = pids - {row.provider_message_id for row in found_rows}
    if missing and _adopt_requeued(conn, module, missing, now, events):
        found_rows = _reported_messages(conn, module, pids)
    current = {row.provider_message_id: [row.id, Status(row.status)] for row in found_rows}
    plan = _Plan()
    for report in reports:
        _plan_report(plan, current, module, report, now, source)
    updates = plan.updates
    execute_rows(conn, _APPLY_REPORT, updates)
    insert_events(conn, plan.timeline)
    if updates:
        by_id = {row.id: row for row in found_rows}
        emit_status_events(
            conn, events, ((by_id[u["mid"]], u["new_status"], u["code"]) for u in updates), now
        )
    if plan.unmatched and keep_unmatched:
        conn.execute(ur.insert(), plan.unmatched)
    return ReportTally(
        plan.counts["applied"],
        plan.counts["duplicate"],
        plan.counts["stale"],
        len(plan.unmatched),
        tuple(u["new_status"] for u in updates),
    )


# Built once, so its SQL is compiled once (`execute_rows`).
_APPLY_REPORT = (
    m.update()
    .where(m.c.id == bindparam("mid"))
    .values(
        status=bindparam("new_status"),
        status_code=bindparam("code"),
        final_at=sa.func.coalesce(m.c.final_at, bindparam("fat", type_=sa.Double)),
        updated_at=bindparam("now"),
    )
)


def lock_provider_ids(conn: Connection, provider_ids: Collection[str]) -> bool:
    """On PostgreSQL, serialise the recording of sends with these provider ids and reports
    naming them, until the transaction ends (advisory locks, taken in one order).

    Without it, under READ COMMITTED a report committed while its send is being recorded is
    missed by both: the report does not see the uncommitted send and is kept aside, and the
    send's look for kept-aside reports ran before that one was committed. Returns whether
    locks were taken (SQLite's single writer serialises them already).
    """
    if conn.dialect.name != "postgresql" or not provider_ids:
        return False
    keys = sorted(provider_ids)
    conn.execute(
        sa.text(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 7321))) "
            "FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS t(k, n)"
        ),
        {"keys": keys},
    )
    return True


def _reported_messages(conn: Connection, module: str, pids: set[str]) -> Sequence[Any]:
    return conn.execute(
        sa.select(*EVENT_COLUMNS, m.c.status, m.c.provider_message_id)
        .where(m.c.module == module, m.c.provider_message_id.in_(pids))
        .with_for_update()
    ).all()


ADOPTED = "a delivery report shows the provider took an earlier attempt: not sent again"


def _adopt_requeued(
    conn: Connection, module: str, pids: set[str], now: float, events: EventSink | None
) -> int:
    """Messages queued again after a dispatcher's lease ran out, named by a report by our id
    (the module's provider id is our message id): the provider took the earlier attempt, so
    they become sent instead of going out a second time."""
    adopted = conn.execute(
        sa.select(*EVENT_COLUMNS)
        .where(
            m.c.id.in_(pids),
            m.c.module == module,
            m.c.status == Status.QUEUED.value,
            m.c.attempts > 0,
            m.c.provider_message_id.is_(None),
        )
        .with_for_update(skip_locked=True)
    ).all()
    if not adopted:
        return 0
    ids = [row.id for row in adopted]
    conn.execute(
        m.update()
        .where(m.c.id.in_(ids), m.c.status == Status.QUEUED.value)
        .values(
            status=Status.SENT.value,
            provider_message_id=m.c.id,
            sent_at=now,
            error=None,
            updated_at=now,
        )
    )
    insert_events(
        conn, (Event(i, now, Status.SENT.value, "dispatcher", detail=ADOPTED) for i in ids)
    )
    emit_status_events(conn, events, ((row, Status.SENT.value, None) for row in adopted), now)
    return len(ids)


def _plan_report(
    plan: _Plan,
    current: dict[str, list[Any]],
    module: str,
    report: StatusReport,
    now: float,
    source: str,
) -> None:
    """Add one report's effect to `plan`; `current` follows the statuses it applies."""
    found = current.get(report.provider_message_id)
    if found is None:
        plan.unmatched.append(
            {
                "module": module,
                "provider_message_id": report.provider_message_id,
                "status": report.status.value,
                "code": report.raw_code,
                "received_at": now,
            }
        )
        return
    result = transition(found[1], report.status)
    plan.counts[result.outcome.value] += 1
    if result.outcome is TransitionOutcome.DUPLICATE:
        return
    detail = report.description or None
    if result.applied:
        found[1] = result.status
        plan.updates.append(
            {
                "mid": found[0],
                "new_status": result.status.value,
                "code": report.raw_code,
                "fat": now if result.status.is_final else None,
                "now": now,
            }
        )
    else:
        detail = f"ignored: message is already {found[1].value}"
    plan.timeline.append(
        Event(
            found[0],
            now,
            report.status.value,
            source,
            report.raw_code,
            detail,
            applied=result.applied,
        )
    )


def apply_early_reports(
    conn: Connection, sent: dict[str, str], now: float, events: EventSink | None = None
) -> list[tuple[str, ReportTally]]:
    """Reports that arrived before the send was recorded are applied now.

    `sent` maps the provider ids of sends just recorded to our message ids. Returns what each
    module's reports did, so that the caller counts those status changes once committed.
    """
    lock_provider_ids(conn, sent)
    early = conn.execute(
        sa.select(ur).where(ur.c.provider_message_id.in_(sent)).order_by(ur.c.id)
    ).all()
    if not early:
        return []
    by_module: dict[str, list[StatusReport]] = {}
    for row in early:
        by_module.setdefault(row.module, []).append(
            StatusReport(row.provider_message_id, Status(row.status), row.code or "")
        )
    tallies = [
        (module, apply_reports(conn, module, reports, now, keep_unmatched=False, events=events))
        for module, reports in by_module.items()
    ]
    conn.execute(ur.delete().where(ur.c.id.in_([row.id for row in early])))
    return tallies


def apply_and_find(
    conn: Connection,
    module: str,
    report: StatusReport,
    now: float,
    *,
    events: EventSink | None = None,
    source: str = "report",
) -> tuple[ReportTally, Any]:
    """Apply one report and read its message's id and status after it (None if unmatched).

    The messaging agent answers with the status the message has now, which a stale or
    duplicate report leaves as it was.
    """
    tally = apply_reports(conn, module, [report], now, events=events, source=source)
    row = conn.execute(
        sa.select(m.c.id, m.c.status).where(
            m.c.module == module, m.c.provider_message_id == report.provider_message_id
        )
    ).first()
    return tally, row


def list_unmatched(
    conn: Connection, *, module: str | None, before_id: int | None, limit: int
) -> list[sa.Row[Any]]:
    """Unmatched reports, newest first, paged by id; `module` empty or None means every one."""
    query = sa.select(ur).order_by(ur.c.id.desc()).limit(limit)
    if module:
        query = query.where(ur.c.module == module)
    if before_id is not None:
        query = query.where(ur.c.id < before_id)
    return list(conn.execute(query).all())


def connections_awaiting_reports(
    conn: Connection, modules: Sequence[str], now: float
) -> set[tuple[str | None, str]]:
    """(connection, module) of sent messages of `modules` whose report is still due: asked
    for, and within the message's validity (after it, none will come).

    A module of `SESSION_REPORT_MODULES` is named as a literal, as its partial index is, so
    the look-up reads only that index's messages still within their validity, however many
    whose reports never came are kept."""
    found: set[tuple[str | None, str]] = set()
    for module in modules:
        named = (
            sa.literal_column(f"'{module}'")
            if module in SESSION_REPORT_MODULES
            else sa.literal(module)
        )
        connections = conn.execute(
            sa.select(m.c.connection_id)
            .where(
                IS_SENT,
                m.c.module == named,
                m.c.delivery_report.is_(sa.true()),
                m.c.expires_at > now,
            )
            .distinct()
        ).scalars()
        found.update((connection_id, module) for connection_id in connections)
    return found
