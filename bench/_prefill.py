"""Fill a migrated smsdesk database with N finished outbound messages, as months of use leave.

The rows look like the ones `smsdesk serve` writes when the simulator sends a message (the
same columns, connection `default`, route `default`, a ULID-like id in time order):

  delivered    90 %  timeline: queued (api), sending (dispatcher), sent (provider), delivered
                     (report)
  undelivered   3 %  the same with an undelivered report
  failed        3 %  queued, sending, failed (provider: a permanent error)
  sent          3 %  queued, sending, sent: the report never came. Only older than their
                     validity (two days), so the reconciler does not ask about them
  expired       1 %  queued, expired (dispatcher): never sent

created_at is spread over the past `days` days, recipients drawn from 90 million Dutch mobile
numbers, texts from a handful of templates with varying fills. The daily spend counters (total
and per country, what the accept path adds to) are written for those days.

Left out: connection_stats (per-minute attempt counts of the health view; old minutes are
only history), audit lines, webhook deliveries, requests and conversations.

Rows go in chunks of 20,000 messages (and their timeline lines) per transaction: on SQLite
a multi-row `executemany` through the engine smsdesk itself uses (WAL, synchronous=NORMAL),
on PostgreSQL `COPY`. Afterwards SQLite's WAL is checkpointed (smsdesk never runs ANALYZE,
so neither does this); PostgreSQL gets VACUUM ANALYZE, as autovacuum would have done.

    python bench/_prefill.py sqlite:////tmp/x/smsdesk.sqlite3 1000000
"""

from __future__ import annotations

import json
import multiprocessing
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from smsdesk.store.db import create_engine, upgrade
from smsdesk.store.retention import id_before
from smsdesk.store.tables import api_keys, message_events, messages, spend_counters

DAY = 86_400.0
VALIDITY = 2 * DAY
CHUNK = 20_000
CONNECTION = "default"
MODULE = "simulator"
MIX = (("delivered", 90), ("undelivered", 3), ("failed", 3), ("sent", 3), ("expired", 1))
TEMPLATES = (
    "Your appointment on {day} {month} at {hour}:{minute:02d} is confirmed. Reply STOP to opt out.",
    "Your verification code is {code}. It is valid for 10 minutes.",
    "Parcel {ref} will be delivered tomorrow between {hour}:00 and {hour2}:00.",
    "Hi, your request {ref} was answered by our service desk. Reply to this message if you "
    "have more questions.",
    "Reminder: invoice {ref} of EUR {amount},00 is due on {day} {month}.",
    "Thank you for your order {ref}. We will let you know when it ships. Questions? Reply to "
    "this message or call us on weekdays between 9:00 and 17:00, we are happy to help you.",
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

MESSAGE_COLUMNS = (
    "id", "module", "recipient", "sender", "body", "encoding", "segments", "priority", "status",
    "created_at", "updated_at", "next_attempt_at", "expires_at", "attempts", "provider_message_id",
    "status_code", "error", "sent_at", "final_at", "api_key_id", "is_test", "delivery_report",
    "transactional", "connection_id", "route_name", "route_plan", "plan_index", "country",
    "connection_attempts", "failovers",
)  # fmt: skip
EVENT_COLUMNS = (
    "message_id", "at", "status", "applied", "source", "code", "detail", "connection_id",
)  # fmt: skip


@dataclass
class Filled:
    """What a fill stored and how long it took."""

    messages: int = 0
    events: int = 0
    seconds: float = 0.0
    by_status: Counter[str] = field(default_factory=Counter)

    @property
    def rows_per_s(self) -> float:
        return (self.messages + self.events) / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        return (
            f"stored {self.messages:,} messages + {self.events:,} timeline lines in "
            f"{self.seconds:.1f} s ({self.rows_per_s:,.0f} rows/s, "
            f"{self.messages / self.seconds if self.seconds else 0:,.0f} messages/s)"
        )


def _suffix(n: int) -> str:
    """16 characters of the id after its 10 time characters, distinct for each n."""
    return "".join(_ALPHABET[(n >> shift) & 31] for shift in range(75, -1, -5))


def _text(rng: random.Random) -> str:
    template = TEMPLATES[rng.randrange(len(TEMPLATES))]
    hour = rng.randrange(8, 18)
    return template.format(
        day=rng.randrange(1, 29),
        month=MONTHS[rng.randrange(12)],
        hour=hour,
        hour2=hour + 4,
        minute=rng.randrange(0, 60, 5),
        code=rng.randrange(100_000, 1_000_000),
        ref=f"{rng.randrange(36**6):06X}",
        amount=rng.randrange(10, 900),
    )


def _segments(body: str) -> int:
    return 1 if len(body) <= 160 else -(-len(body) // 153)


def _statuses(rng: random.Random, count: int) -> list[str]:
    names = [name for name, _ in MIX]
    return rng.choices(names, weights=[w for _, w in MIX], k=count)


def _rows(
    n: int, at: float, status: str, rng: random.Random, api_key_id: str | None
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One message (columns as MESSAGE_COLUMNS) and its timeline lines (as EVENT_COLUMNS)."""
    mid = id_before(at)[:10] + _suffix(n)
    body = _text(rng)
    claimed = at + rng.uniform(0.002, 0.05)
    sent = claimed + rng.uniform(0.005, 0.4)
    timeline: list[tuple[Any, ...]] = [(mid, at, "queued", True, "api", None, None, None)]
    pid = code = error = sent_at = final_at = None
    attempts = 1
    if status == "expired":
        attempts, final_at = 0, at + VALIDITY
        error = "validity period ended before the message could be sent"
        timeline.append((mid, final_at, "expired", True, "dispatcher", None, error, None))
    else:
        detail = f"attempt 1 by vm:{1000 + n % 7}"
        timeline.append((mid, claimed, "sending", True, "dispatcher", None, detail, CONNECTION))
        if status == "failed":
            code, error, final_at = "invalid_number", "the number does not exist", sent
            timeline.append((mid, sent, "failed", True, "provider", code, error, CONNECTION))
        else:
            pid, sent_at = f"SIM{rng.getrandbits(64):016x}", sent
            accepted = "accepted by the provider"
            timeline.append((mid, sent, "sent", True, "provider", "0", accepted, CONNECTION))
            if status in ("delivered", "undelivered"):
                final_at = sent + rng.lognormvariate(1.5, 1.0)
                code, word = (
                    ("DELIVRD:000", "DELIVRD")
                    if status == "delivered"
                    else ("UNDELIV:001", "UNDELIV")
                )
                timeline.append((mid, final_at, status, True, "report", code, word, None))
    updated = final_at or sent_at or at
    message = (
        mid, MODULE, f"+316{rng.randrange(10_000_000, 100_000_000)}", "smsdesk", body, "gsm7",
        _segments(body), 2, status, at, updated, claimed, at + VALIDITY, attempts, pid, code,
        error, sent_at, final_at, api_key_id, False, True, False, CONNECTION, "default",
        '["default"]', 0, "NL", attempts, 0,
    )  # fmt: skip
    return message, timeline


@dataclass(frozen=True)
class Plan:
    """What to generate: `count` messages over the `days` before `now`."""

    count: int
    now: float
    days: float
    seed: int
    api_key_id: str | None

    def chunks(self) -> list[tuple[Plan, int]]:
        return [(self, first) for first in range(0, self.count, CHUNK)]


def generate_chunk(
    job: tuple[Plan, int],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The messages from number `first` on (at most CHUNK) and their timeline lines, oldest
    first, as the service would have made them; the same for the same plan."""
    plan, first = job
    rng = random.Random(plan.seed * 1_000_003 + first)
    start = plan.now - plan.days * DAY
    step = plan.days * DAY / max(plan.count, 1)
    size = min(CHUNK, plan.count - first)
    batch, lines = [], []
    for n, status in enumerate(_statuses(rng, size), first):
        at = start + n * step + rng.uniform(0, step)
        if status == "sent" and plan.now - at < VALIDITY:
            status = "delivered"  # a recent message without a report would be asked about
        message, timeline = _rows(n, at, status, rng, plan.api_key_id)
        batch.append(message)
        lines += timeline
    return batch, lines


def generate(plan: Plan) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """The chunks in order, made by a process of their own while the caller stores them."""
    with multiprocessing.get_context("fork").Pool(1) as pool:
        yield from pool.imap(generate_chunk, plan.chunks())


def prefill(url: str, count: int, *, days: float = 30, seed: int = 17) -> Filled:
    """Store `count` finished messages in the database at `url`, which has none yet (its
    schema is brought up to date first, as every smsdesk command does)."""
    engine = create_engine(url)
    filled = Filled()
    started = time.monotonic()
    try:
        upgrade(engine)  # a no-op on a migrated database
        with engine.connect() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar():
                raise RuntimeError("prefill needs a database without messages")
            key = conn.execute(sa.select(api_keys.c.id).order_by(api_keys.c.id)).scalar()
        now = time.time()
        per_day: dict[str, list[int]] = {}
        for batch, lines in generate(Plan(count, now, days, seed, key)):
            with engine.begin() as conn:
                _big_cache(conn)
                write_rows(conn, messages, MESSAGE_COLUMNS, batch)
                write_rows(conn, message_events, EVENT_COLUMNS, lines)
            filled.messages += len(batch)
            filled.events += len(lines)
            filled.by_status.update(row[8] for row in batch)
            for row in batch:
                tally = per_day.setdefault(_day(row[9]), [0, 0])
                tally[0] += 1
                tally[1] += row[6]
        with engine.begin() as conn:
            _write_spend(conn, per_day)
        settle(engine)
    finally:
        engine.dispose()
    filled.seconds = time.monotonic() - started
    return filled


def _big_cache(conn: sa.Connection) -> None:
    """A page cache of 512 MiB for this connection only (not stored in the database): the
    random-order indexes (recipient, provider id) then stay in memory while they grow."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA cache_size=-524288")


def write_rows(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Rows (tuples in the order of `columns`): COPY on PostgreSQL, executemany on SQLite."""
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" * len(columns))
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def _write_spend(conn: sa.Connection, per_day: dict[str, list[int]]) -> None:
    """The daily counters the accept path keeps, total and per country (messages, segments)."""
    rows = [
        (day, scope, country, "", tally[0], tally[1], 0, False)
        for day, tally in sorted(per_day.items())
        for scope, country in (("total", ""), ("country", "NL"))
    ]
    columns = ("day", "scope", "country", "api_key_id", "messages", "segments", "cost", "alerted")
    write_rows(conn, spend_counters, columns, rows)


def settle(engine: sa.Engine) -> None:
    """A checkpoint (SQLite) or VACUUM ANALYZE and a checkpoint (PostgreSQL) after the load."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE messages, message_events, spend_counters")
            conn.exec_driver_sql("CHECKPOINT")
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    filled = prefill(argv[0], int(argv[1]))
    print(filled.describe(), json.dumps(dict(filled.by_status)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
