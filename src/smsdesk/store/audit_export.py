"""Reading the audit trail out: filters from text, entries as plain values, CSV.

Shared by `smsdesk audit`, `GET /api/v1/audit` and the Audit screen, so the three agree on what
a filter means and what an exported row holds.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.engine import Engine

from smsdesk.domain.times import iso
from smsdesk.store.audit import AuditFilter, list_entries

CSV_COLUMNS = (
    "id",
    "at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "address",
    "action",
    "target_kind",
    "target_id",
    "details",
    "hash",
)
MAX_PAGE = 1000


class BadFilter(ValueError):
    """A filter value that cannot be read; the message names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_time(field: str, text: str | None, *, end_of_day: bool = False) -> float | None:
    """An ISO 8601 date or time (UTC unless it names its offset) as a timestamp.

    A bare date means the start of that day, or with `end_of_day` the start of the next, so
    `--until 2026-05-01` includes the whole of 1 May.
    """
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
            return start + 86400 if end_of_day else start
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadFilter(
            field, f"'{value}' is not a date or time; write e.g. 2026-05-01 or 2026-05-01T14:30Z."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def make_filter(
    *,
    action: str | None = None,
    actor: str | None = None,
    actor_kind: str | None = None,
    target_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> AuditFilter:
    return AuditFilter(
        action=(action or "").strip() or None,
        actor=(actor or "").strip() or None,
        actor_kind=(actor_kind or "").strip() or None,
        target_id=(target_id or "").strip() or None,
        since=parse_time("since", since),
        until=parse_time("until", until, end_of_day=True),
    )


def as_dict(row: Any) -> dict[str, Any]:
    """One entry as the API shows it."""
    try:
        details = json.loads(row.details)
    except ValueError:
        details = row.details
    return {
        "id": row.id,
        "at": iso(row.at),
        "actor": {
            "kind": row.actor_kind,
            "id": row.actor_id,
            "name": row.actor_name,
            "address": row.address,
        },
        "action": row.action,
        "target": {"kind": row.target_kind, "id": row.target_id}
        if row.target_kind or row.target_id
        else None,
        "details": details,
        "hash": row.hash,
    }


def every_entry(engine: Engine, where: AuditFilter, batch: int = 500) -> Iterator[Any]:
    """Every matching entry, newest first, read a page at a time."""
    before: int | None = None
    while True:
        with engine.connect() as conn:
            rows = list_entries(conn, where, before_id=before, limit=batch)
        yield from rows
        if len(rows) < batch:
            return
        before = rows[-1].id


def _cell(value: Any) -> str:
    """Text for a spreadsheet: a value that would start a formula is quoted."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_header() -> str:
    return _csv_line(CSV_COLUMNS)


def csv_row(row: Any) -> str:
    values = (
        row.id,
        iso(row.at),
        row.actor_kind,
        row.actor_id,
        row.actor_name,
        row.address,
        row.action,
        row.target_kind,
        row.target_id,
        row.details,
        row.hash,
    )
    return _csv_line([_cell(v) for v in values])


def _csv_line(values: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()
