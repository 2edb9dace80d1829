"""What a mailing did, live while it sends and after its messages are purged: counts by status
and by reason blocked, replies and opt-outs, each recipient's row (also as CSV) and deliveries
over time. The API, the screens and the CLI all call these.

Each recipient's status is its message's while the message exists, else the status mirrored
onto the recipient (`store.mailing_stats`), so the figures stay the same after retention.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from smsdesk.domain.mailing_checks import Check
from smsdesk.domain.mailings import Mailing
from smsdesk.domain.times import iso
from smsdesk.host import Host
from smsdesk.store import mailing_stats as store
from smsdesk.store.mailings import MailingNotFound, get_mailing, list_recipients

MESSAGE_STATUSES = (
    "waiting",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "expired",
    "cancelled",
)
BLOCKED = ("invalid", "duplicate", "opted_out", "no_consent", "refused")
# what the sender records for a valid recipient it did not queue: blocked for this reason
_REFUSED_AT_SENDING = {"opted_out": "opted_out", "refused": "refused"}
CSV_COLUMNS = (
    "line",
    "given",
    "number",
    "check",
    "reason",
    "message_id",
    "status",
    "provider_code",
    "status_at",
)
EXPORT_PAGE = 1000


def _require(host: Host, mailing_id: str) -> None:
    with host.engine.connect() as conn:
        if get_mailing(conn, mailing_id) is None:
            raise MailingNotFound(mailing_id)


def statistics(host: Host, mailing_id: str) -> dict[str, Any]:
    """The mailing's recipients in total; `status`: the valid ones by their SMS's status
    (every key present, `waiting`: not queued yet); `blocked`: those not sent to, by reason
    (at the check, or `opted_out`/`refused` by the outbox when sending); `replies` and
    `opt_outs` caused; `messages`: the raw statuses of the valid recipients, as before."""
    _require(host, mailing_id)
    with host.engine.connect() as conn:
        rows = store.status_counts(conn, mailing_id)
        replies, opt_outs = store.reply_counts(conn, mailing_id)
    status = dict.fromkeys(MESSAGE_STATUSES, 0)
    blocked = dict.fromkeys(BLOCKED, 0)
    raw: dict[str, int] = {}
    total = valid = 0
    for check, state, count in rows:
        total += count
        if check != Check.VALID.value:
            blocked[check] = blocked.get(check, 0) + count
            continue
        valid += count
        raw[state] = raw.get(state, 0) + count
        if state in _REFUSED_AT_SENDING:
            blocked[_REFUSED_AT_SENDING[state]] += count
        else:
            status[state] = status.get(state, 0) + count
    return {
        "recipients": total,
        "valid": valid,
        "status": status,
        "blocked": blocked,
        "replies": replies,
        "opt_outs": opt_outs,
        "messages": raw,
    }


def recipient_out(row: Any) -> dict[str, Any]:
    """One recipient as the API shows it (times in ISO 8601)."""
    return {
        "id": row.id,
        "line": row.line,
        "given": row.given,
        "number": row.number or row.given,
        "customer_id": row.customer_id,
        "result": row.check_result,
        "reason": row.reason,
        "time_zone": row.time_zone,
        "message_id": row.message_id,
        "status": row.message_status,
        "status_code": row.provider_code,
        "status_at": iso(row.status_time),
        "sent_at": iso(row.sent_at),
        "delivered_at": iso(row.delivered_at),
    }


_PHONE_LIKE = re.compile(r"[+\d\s().-]*")


def _cell(value: Any) -> str:
    """Text a spreadsheet shows as text: a value that would start a formula is quoted (a
    number as written, e.g. "+31 6 1234", is left as it is)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _PHONE_LIKE.fullmatch(text):
        return "'" + text
    return text


def _csv_row(row: Any) -> list[str]:
    number = row.number or ""
    return [
        str(row.line),
        _cell(row.given),
        number,  # E.164 (+ and digits): kept as written, never a formula
        row.check_result,
        _cell(row.reason),
        row.message_id or "",
        row.message_status or "",
        _cell(row.provider_code),
        iso(row.status_time) or "",
    ]


def export_csv(host: Host, mailing_id: str) -> Iterator[str]:
    """Every recipient as CSV (UTF-8, a header of `CSV_COLUMNS`), one chunk of text per page
    of `EXPORT_PAGE` rows, each page read on a connection of its own: a 100,000-recipient
    mailing is never held in memory. MailingNotFound before the first chunk."""
    _require(host, mailing_id)
    return _export(host, mailing_id)


def _export(host: Host, mailing_id: str) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    after = 0
    while True:
        with host.engine.connect() as conn:
            page = list_recipients(conn, mailing_id, after=after, limit=EXPORT_PAGE)
        writer.writerows(_csv_row(row) for row in page)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if len(page) < EXPORT_PAGE:
            return
        after = page[-1].id


class DeliveryBucket(NamedTuple):
    """SMS of a mailing sent, delivered and undelivered/failed/expired within one stretch
    of time starting at `start` (epoch seconds, UTC)."""

    start: float
    sent: int
    delivered: int
    failed: int


WIDTHS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
_FAILED = {"undelivered", "failed", "expired"}


def bucket_width(first: float, last: float, buckets: int) -> int:
    """The shortest round stretch (a minute, 5 minutes, ... a week) that covers first..last
    in at most `buckets` stretches aligned to it."""
    for width in WIDTHS:
        if (last // width - first // width) + 1 <= buckets:
            return width
    return WIDTHS[-1]


def delivery_over_time(host: Host, mailing_id: str, buckets: int = 24) -> list[DeliveryBucket]:
    """The mailing's SMS by when they were sent and settled, in at most `buckets` (at least 1)
    consecutive stretches of a round width (`bucket_width`), empty ones included, from the
    first send to the last send or report; [] before anything was sent. An SMS counts as sent
    in its send's stretch, and as delivered or failed in its report's."""
    _require(host, mailing_id)
    buckets = max(1, buckets)
    with host.engine.connect() as conn:
        first, last = store.delivery_range(conn, mailing_id)
        if first is None or last is None:
            return []
        width = bucket_width(first, last, buckets)
        start = first // width * width
        groups = store.delivery_groups(conn, mailing_id, start, width)
    count = int((last - start) // width) + 1
    sent, delivered, failed = [0] * count, [0] * count, [0] * count
    for state, sent_in, final_in, recipients in groups:
        if sent_in is not None and 0 <= sent_in < count:
            sent[sent_in] += recipients
        if final_in is None or not 0 <= final_in < count:
            continue
        if state == "delivered":
            delivered[final_in] += recipients
        elif state in _FAILED:
            failed[final_in] += recipients
    return [
        DeliveryBucket(start + i * width, sent[i], delivered[i], failed[i]) for i in range(count)
    ]


def mailing_out(mailing: Mailing) -> dict[str, Any]:
    """A mailing as the API and `smsdesk mailings --json` show it."""
    spec = mailing.spec
    return {
        "id": mailing.id,
        "name": spec.name,
        "status": mailing.status.value,
        "text": spec.text,
        "template_id": spec.template_id,
        "sender": spec.sender,
        "connection": spec.connection,
        "priority": spec.priority,
        "validity_hours": spec.validity_hours,
        "window": spec.window.as_dict() if spec.window else None,
        "throttle_per_minute": spec.throttle_per_minute,
        "tags": list(spec.tags),
        "replies": spec.replies.value,
        "override_consent": spec.override_consent,
        "scheduled_at": iso(spec.scheduled_at),
        "created_by": mailing.created_by,
        "created_at": iso(mailing.created_at),
        "updated_at": iso(mailing.updated_at),
        "started_at": iso(mailing.started_at),
        "finished_at": iso(mailing.finished_at),
    }
