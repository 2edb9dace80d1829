"""Every change of a mailing's status, with its `mailing.status` event in the same transaction.

The event carries the mailing's id and name, the old and the new status, and what became of
its recipients so far, so a subscriber can follow a mailing without asking the API. The
counts are read only when someone subscribes (a status changes a handful of times per
mailing, so even a large mailing's count is cheap at that rate).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from smsdesk import events as ev
from smsdesk.domain.mailing_checks import Check
from smsdesk.domain.mailings import Action, Status
from smsdesk.domain.times import iso
from smsdesk.events import EventSink
from smsdesk.store import mailings as store
from smsdesk.store.mailing_stats import reply_counts, status_counts

# a message's (or recipient's) status -> the count it adds to in the event's summary
_SUMMARY = {
    "waiting": "waiting",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "expired": "failed",
    "cancelled": "cancelled",
    "opted_out": "blocked",
    "no_consent": "blocked",
    "refused": "blocked",
}
SUMMARY_KEYS = ("recipients", "waiting", "queued", "sent", "delivered", "failed", "blocked")


def counts_summary(conn: Connection, mailing_id: str) -> dict[str, int]:
    """Recipients in total and by what became of them: waiting to be queued, queued (in the
    outbox), sent (awaiting a report), delivered, failed, blocked (at the check or at sending),
    cancelled; and the replies and opt-outs the mailing caused."""
    summary = dict.fromkeys((*SUMMARY_KEYS, "cancelled"), 0)
    for check, state, count in status_counts(conn, mailing_id):
        summary["recipients"] += count
        key = _SUMMARY.get(state, "failed") if check == Check.VALID.value else "blocked"
        summary[key] += count
    summary["replies"], summary["opt_outs"] = reply_counts(conn, mailing_id)
    return summary


def change(
    conn: Connection,
    mailing_id: str,
    action: Action,
    now: float,
    events: EventSink | None,
) -> Status:
    """Apply a life-cycle action to a mailing (locked) and emit `mailing.status`; the new
    status. Refused (MailingProblem) with the statuses that allow the step."""
    before = store.lock_mailing(conn, mailing_id)
    after = store.change_status(conn, mailing_id, action, now)
    if events is not None and _wanted(conn, events):
        events.emit(
            conn,
            ev.MAILING_STATUS,
            [_payload(conn, before.spec.name, mailing_id, before.status, after, action, now)],
        )
    return after


def _wanted(conn: Connection, events: EventSink) -> bool:
    """Whether the sink has a subscriber (a sink that cannot say is assumed to want it)."""
    wants = getattr(events, "wants", None)
    return True if wants is None else bool(wants(conn, ev.MAILING_STATUS))


def _payload(
    conn: Connection,
    name: str,
    mailing_id: str,
    old: Status,
    new: Status,
    action: Action,
    now: float,
) -> dict[str, Any]:
    return {
        "id": mailing_id,
        "name": name,
        "old_status": old.value,
        "status": new.value,
        "action": action.value,
        "counts": counts_summary(conn, mailing_id),
        "at": iso(now),
    }
