"""Mailings and their recipients in the database.

Recipients are checked and stored a chunk at a time (`check_and_add`), each chunk one writer
job: a 100,000-recipient list is never held in memory whole, and the numbers seen so far are
found again in the table rather than carried along. Reads take any connection.

Errors:
    MailingNotFound      no mailing with that id (an API 404)
    RecipientNotFound    no such recipient in the mailing (an API 404)
    MailingProblem       (domain) a change the mailing's status does not allow (an API 422)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.domain.ids import new_id
from smsdesk.domain.mailing_checks import (
    Check,
    CheckCounts,
    CheckReport,
    Lookups,
    RecipientInput,
    check_normalised,
    normalise_rows,
)
from smsdesk.domain.mailing_window import recipient_time_zone
from smsdesk.domain.mailings import (
    Action,
    Mailing,
    MailingProblem,
    MailingSpec,
    Replies,
    Status,
    require_draft,
    transition,
    window_from_dict,
)
from smsdesk.store import mailing_estimates as estimates
from smsdesk.store.customers import customer_ids_by_number
from smsdesk.store.mailing_consents import consents_of
from smsdesk.store.mailing_stats import final_time, recipient_status, sent_time, status_time
from smsdesk.store.mailing_tables import mailing_recipients as mr
from smsdesk.store.mailing_tables import mailings
from smsdesk.store.optouts import opted_out
from smsdesk.store.tables import customers, messages

CHUNK = 1000  # recipients checked and inserted per transaction
_IN = 500  # values per IN (...) query


class MailingNotFound(LookupError):
    def __init__(self, mailing_id: str) -> None:
        super().__init__(f"There is no mailing with id '{mailing_id}'.")
        self.message = str(self)


class RecipientNotFound(LookupError):
    def __init__(self, mailing_id: str, recipient: str) -> None:
        super().__init__(f"Mailing '{mailing_id}' has no recipient '{recipient}'.")
        self.message = str(self)


def _spec_columns(spec: MailingSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "text": spec.text,
        "template_id": spec.template_id,
        "sender": spec.sender,
        "connection": spec.connection,
        "priority": spec.priority,
        "validity_hours": spec.validity_hours,
        "send_window": json.dumps(spec.window.as_dict()) if spec.window else None,
        "throttle_per_minute": spec.throttle_per_minute,
        "tags": json.dumps(list(spec.tags)),
        "replies": spec.replies.value,
        "override_consent": spec.override_consent,
        "scheduled_at": spec.scheduled_at,
    }


def _mailing(row: sa.Row[Any]) -> Mailing:
    spec = MailingSpec(
        name=row.name,
        text=row.text,
        template_id=row.template_id,
        sender=row.sender,
        connection=row.connection,
        priority=row.priority,
        validity_hours=row.validity_hours,
        window=window_from_dict(json.loads(row.send_window)) if row.send_window else None,
        throttle_per_minute=row.throttle_per_minute,
        tags=tuple(json.loads(row.tags)),
        replies=Replies(row.replies),
        override_consent=bool(row.override_consent),
        scheduled_at=row.scheduled_at,
    )
    return Mailing(
        id=row.id,
        spec=spec,
        status=Status(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def insert_mailing(
    conn: Connection, spec: MailingSpec, *, now: float, created_by: str | None = None
) -> str:
    """Store a checked spec as a new draft; its id."""
    mailing_id = new_id()
    conn.execute(
        mailings.insert().values(
            id=mailing_id,
            status=Status.DRAFT.value,
            created_by=created_by,
            created_at=now,
            updated_at=now,
            **_spec_columns(spec),
        )
    )
    return mailing_id


def get_mailing(conn: Connection, mailing_id: str) -> Mailing | None:
    row = conn.execute(sa.select(mailings).where(mailings.c.id == mailing_id)).first()
    return None if row is None else _mailing(row)


def lock_mailing(conn: Connection, mailing_id: str) -> Mailing:
    """The mailing, its row locked until commit (PostgreSQL): status changes take turns."""
    row = conn.execute(
        sa.select(mailings).where(mailings.c.id == mailing_id).with_for_update()
    ).first()
    if row is None:
        raise MailingNotFound(mailing_id)
    return _mailing(row)


def update_draft(conn: Connection, mailing_id: str, spec: MailingSpec, now: float) -> None:
    """Replace a draft's settings with a checked spec; refused once it is no draft."""
    before = lock_mailing(conn, mailing_id)
    require_draft(before.status, "changed")
    conn.execute(
        mailings.update()
        .where(mailings.c.id == mailing_id)
        .values(updated_at=now, **_spec_columns(spec))
    )
    if before.spec.override_consent != spec.override_consent:
        recheck_consent(conn, mailing_id, override=spec.override_consent)
    if _estimated_by(before.spec) != _estimated_by(spec):
        estimates.invalidate(conn, mailing_id)


def _estimated_by(spec: MailingSpec) -> tuple[Any, ...]:
    """What a recipient's estimate depends on in the mailing's settings."""
    tag = spec.tags[0] if spec.tags else None
    return (
        spec.text,
        spec.template_id,
        spec.sender,
        spec.connection,
        spec.priority,
        spec.validity_hours,
        tag,
    )


NO_CONSENT = "The customer has not consented to mailings."


def recheck_consent(conn: Connection, mailing_id: str, *, override: bool) -> None:
    """Check the recipients' consent again after the override changed: on, every recipient
    without consent becomes valid; off, valid ones without consent become `no_consent`."""
    if override:
        conn.execute(
            mr.update()
            .where(mr.c.mailing_id == mailing_id, mr.c.check_result == Check.NO_CONSENT.value)
            .values(check_result=Check.VALID.value, reason=None)
        )
        return
    after = 0
    while page := conn.execute(
        sa.select(mr.c.id, mr.c.customer_id)
        .where(
            mr.c.mailing_id == mailing_id,
            mr.c.check_result == Check.VALID.value,
            mr.c.id > after,
        )
        .order_by(mr.c.id)
        .limit(_IN)
    ).all():
        given = consents_of(conn, [r.customer_id for r in page if r.customer_id])
        lacking = [r.id for r in page if not given.get(r.customer_id or "", False)]
        if lacking:
            conn.execute(
                mr.update()
                .where(mr.c.id.in_(lacking))
                .values(check_result=Check.NO_CONSENT.value, reason=NO_CONSENT)
            )
        after = page[-1].id


def delete_draft(conn: Connection, mailing_id: str) -> None:
    """Delete a draft and its recipients; a mailing that was started is kept (cancel it)."""
    require_draft(lock_mailing(conn, mailing_id).status, "deleted")
    conn.execute(mr.delete().where(mr.c.mailing_id == mailing_id))
    conn.execute(mailings.delete().where(mailings.c.id == mailing_id))
    estimates.forget_basis(conn, mailing_id)


NOT_A_DRAFT_TO_REMOVE = "The mailing is {status}; recipients can be removed only from a draft."


def delete_recipients(
    conn: Connection,
    mailing_id: str,
    *,
    result: Check | None = None,
    ids: Sequence[int] | None = None,
) -> int:
    """Remove a draft's recipients: all of them, those with one check result, or these ids
    (ids of other mailings are left alone); how many went. A duplicate of a removed number
    stays a duplicate."""
    status = lock_mailing(conn, mailing_id).status
    if status is not Status.DRAFT:
        raise MailingProblem(NOT_A_DRAFT_TO_REMOVE, field="status", status=status.value)
    where = [mr.c.mailing_id == mailing_id]
    if result is not None:
        where.append(mr.c.check_result == result.value)
    if ids is None:
        return int(conn.execute(mr.delete().where(*where)).rowcount or 0)
    wanted = sorted(set(ids))
    removed = 0
    for start in range(0, len(wanted), _IN):
        chunk = mr.c.id.in_(wanted[start : start + _IN])
        removed += int(conn.execute(mr.delete().where(*where, chunk)).rowcount or 0)
    return removed


def change_status(conn: Connection, mailing_id: str, action: Action, now: float) -> Status:
    """Apply a life-cycle action (see `domain.mailings.transition`); the new status."""
    current = lock_mailing(conn, mailing_id)
    target = transition(current.status, action)
    values: dict[str, Any] = {"status": target.value, "updated_at": now}
    if target is Status.SENDING and current.started_at is None:
        values["started_at"] = now
    if target in (Status.DONE, Status.CANCELLED):
        values["finished_at"] = now
    conn.execute(mailings.update().where(mailings.c.id == mailing_id).values(**values))
    return target


def list_mailings(
    conn: Connection, *, status: Status | None = None, before: str | None = None, limit: int = 50
) -> list[Mailing]:
    """Newest first (ids are time-ordered); `before` is the last id of the previous page."""
    query = sa.select(mailings).order_by(mailings.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(mailings.c.status == status.value)
    if before:
        query = query.where(mailings.c.id < before)
    return [_mailing(row) for row in conn.execute(query)]


def _numbers_in_mailing(conn: Connection, mailing_id: str, numbers: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(numbers), _IN):
        found.update(
            conn.execute(
                sa.select(mr.c.number).where(
                    mr.c.mailing_id == mailing_id, mr.c.number.in_(numbers[start : start + _IN])
                )
            ).scalars()
        )
    return found


def lookups_for(conn: Connection, mailing_id: str, numbers: Sequence[str]) -> Lookups:
    """What the database knows of these numbers, for checking them as the mailing's."""
    wanted = sorted(set(numbers))
    owners = customer_ids_by_number(conn, wanted) if wanted else {}
    return Lookups(
        opted_out=opted_out(conn, wanted) if wanted else set(),
        owners=owners,
        consent=consents_of(conn, owners.values()),
        seen=_numbers_in_mailing(conn, mailing_id, wanted),
    )


class Added(NamedTuple):
    """A chunk checked and stored: its report, and the ids its rows got (first, last)."""

    report: CheckReport
    first_id: int
    last_id: int


def check_and_add(
    conn: Connection,
    mailing_id: str,
    chunk: Sequence[RecipientInput],
    *,
    default_country_code: str | None,
    fallback_zone: str = "UTC",
) -> Added:
    """Check one chunk of recipients against the database and store every row with its
    result (at most `CHUNK` rows: call once per chunk)."""
    mailing = lock_mailing(conn, mailing_id)
    require_draft(mailing.status, "given recipients")
    items = normalise_rows(chunk, default_country_code)
    known = [i.number for i in items if i.number is not None]
    lookups = lookups_for(conn, mailing_id, known)
    given_ids = [i.given.customer_id for i in items if i.given.customer_id]
    if given_ids:
        extra = consents_of(conn, given_ids)
        lookups = Lookups(
            lookups.opted_out, lookups.owners, {**lookups.consent, **extra}, lookups.seen
        )
    report = check_normalised(items, lookups, override_consent=mailing.spec.override_consent)
    rows = [
        {
            "mailing_id": mailing_id,
            "line": r.line,
            "given": r.given[:100],
            "number": r.number,
            "customer_id": r.customer_id,
            "variables": json.dumps(dict(r.variables)) if r.variables else None,
            "check_result": r.result.value,
            "reason": r.reason,
            "time_zone": recipient_time_zone(r.number, fallback_zone) if r.number else None,
        }
        for r in report.rows
    ]
    ids = list(conn.execute(mr.insert().returning(mr.c.id), rows).scalars()) if rows else [0]
    return Added(report, min(ids), max(ids))


def check_counts(conn: Connection, mailing_id: str) -> CheckCounts:
    """How many recipients got each check result."""
    counts = CheckCounts()
    rows = conn.execute(
        sa.select(mr.c.check_result, sa.func.count())
        .where(mr.c.mailing_id == mailing_id)
        .group_by(mr.c.check_result)
    )
    for result, count in rows:
        counts.add(Check(result), int(count))
    return counts


def statistics(conn: Connection, mailing_id: str) -> dict[str, Any]:
    """Blocked recipients by reason, and the valid ones by their message's status (live from
    the outbox, else the mirrored status; `waiting` for those not queued yet)."""
    counts = check_counts(conn, mailing_id)
    status = sa.func.coalesce(messages.c.status, mr.c.status, "waiting")
    rows = conn.execute(
        sa.select(status, sa.func.count())
        .select_from(mr.outerjoin(messages, messages.c.id == mr.c.message_id))
        .where(mr.c.mailing_id == mailing_id, mr.c.check_result == Check.VALID.value)
        .group_by(status)
    )
    by_status = {str(name): int(count) for name, count in rows}
    blocked = {c.value: getattr(counts, c.value) for c in Check if c is not Check.VALID}
    return {"recipients": counts.total, "blocked": blocked, "messages": by_status}


def list_recipients(
    conn: Connection,
    mailing_id: str,
    *,
    after: int = 0,
    limit: int = 100,
    result: Check | None = None,
    status: str | None = None,
) -> list[sa.Row[Any]]:
    """Recipients in the order given, with their message's status (`message_status`), the
    provider's code, the status time and the send and delivery times (from the message while
    it exists, else as mirrored); `after` is the last id of the previous page; `status` as
    `store.mailing_stats.recipient_status` says it (e.g. delivered, waiting, refused)."""
    effective = recipient_status()
    final = final_time()
    query = (
        sa.select(
            mr,
            sa.func.coalesce(messages.c.status, mr.c.status).label("message_status"),
            sa.func.coalesce(messages.c.status_code, mr.c.status_code).label("provider_code"),
            sa.case((messages.c.id.is_not(None), status_time()), else_=mr.c.status_at).label(
                "status_time"
            ),
            sent_time().label("sent_at"),
            sa.case((effective == "delivered", final)).label("delivered_at"),
        )
        .select_from(mr.outerjoin(messages, messages.c.id == mr.c.message_id))
        .where(mr.c.mailing_id == mailing_id, mr.c.id > after)
        .order_by(mr.c.id)
        .limit(limit)
    )
    if result is not None:
        query = query.where(mr.c.check_result == result.value)
    if status is not None:
        query = query.where(effective == status)
    return list(conn.execute(query))


def get_recipient(
    conn: Connection, mailing_id: str, *, recipient_id: int | None = None, number: str = ""
) -> sa.Row[Any] | None:
    """One recipient by id or by number, with its customer's name."""
    query = (
        sa.select(mr, customers.c.name.label("customer_name"))
        .select_from(mr.outerjoin(customers, customers.c.id == mr.c.customer_id))
        .where(mr.c.mailing_id == mailing_id)
        .order_by(mr.c.id)
        .limit(1)
    )
    if recipient_id is not None:
        query = query.where(mr.c.id == recipient_id)
    else:
        query = query.where(mr.c.number == number)
    return conn.execute(query).first()


def sample_recipient(conn: Connection, mailing_id: str) -> sa.Row[Any] | None:
    """The first valid recipient given, else the first given (a sample of the row values),
    with its customer's name."""
    not_valid = sa.case((mr.c.check_result == Check.VALID.value, 0), else_=1)
    return conn.execute(
        sa.select(mr, customers.c.name.label("customer_name"))
        .select_from(mr.outerjoin(customers, customers.c.id == mr.c.customer_id))
        .where(mr.c.mailing_id == mailing_id)
        .order_by(not_valid, mr.c.id)
        .limit(1)
    ).first()
