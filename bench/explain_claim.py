"""The query plans of the dispatcher's claim and the other hot statements, on a big database.

A database with --rows finished messages (bench/_prefill.py) and --queued due messages of the
default connection is built (or, on SQLite, reused with --sqlite-file). Then each operation
below is run through smsdesk's own store functions, in a transaction that is rolled back,
and every statement it sends to the database is recorded as sent (SQL and parameters): the
plans are of exactly those statements, not of SQL typed again here.

  claim            outbox.dispatcher.claim_sendable for connection `default` and the simulator's
                   messages without a connection, 500 at most (what a dispatcher scan does),
                   then store.messages.record_send_outcomes for what it claimed
  waiting          store.messages.waiting_on (the scan's look at what is due per connection)
  expire           store.messages.expire_overdue
  lease expiry     store.lease_expiry.release_expired_leases
  awaiting reports store.reports.connections_awaiting_reports (dispatcher housekeeping, every
                   5 s at most, for the SMPP module, through its own partial index)
  queue depth      store.messages.queue_depth (metrics, dashboard)
  report           store.reports.apply_reports: a delivered report for a sent message, found
                   by its provider id; and one matching no message (kept aside)
  accept lookups   store.messages.get_idempotency and store.optouts.opted_out

Printed per statement: the SQL, its plan (SQLite: EXPLAIN QUERY PLAN; PostgreSQL:
EXPLAIN (ANALYZE, BUFFERS), run and rolled back), whether it reads messages or
message_events through an index, and its time (the median of 5; PostgreSQL: the execution
time EXPLAIN ANALYZE reports). A verdict per operation and a summary close the output.

    python bench/explain_claim.py                           # SQLite, 1,000,000 messages
    python bench/explain_claim.py --database postgres
    python bench/explain_claim.py --rows 50000              # a quick look
    python bench/explain_claim.py --sqlite-file /tmp/big.sqlite3   # fill once, reuse after
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from _prefill import CONNECTION, MESSAGE_COLUMNS, MODULE, VALIDITY, prefill, write_rows
from _server import scratch_postgres_database
from _vs_systems import running_postgres

from smsdesk.domain.message import Status
from smsdesk.domain.sms import StatusReport
from smsdesk.outbox.dispatcher import claim_sendable
from smsdesk.store import lease_expiry, reports
from smsdesk.store import messages as repo
from smsdesk.store.db import create_engine
from smsdesk.store.optouts import opted_out
from smsdesk.store.retention import id_before
from smsdesk.store.tables import messages

OWNER = "explain:1"
CLAIM_LIMIT = 500
TIMED_RUNS = 5
HOT_TABLES = ("messages", "message_events")


@dataclass
class Statement:
    sql: str
    parameters: Any
    many: bool

    @property
    def first_parameters(self) -> Any:
        return self.parameters[0] if self.many else self.parameters

    def reads_hot_table(self) -> bool:
        return bool(re.search(r"\b(FROM|UPDATE|JOIN)\s+(messages|message_events)\b", self.sql))


@dataclass
class Plan:
    statement: Statement
    lines: list[str]
    ms: float
    verdict: str  # index, full scan, full index scan, not messages


@dataclass
class Operation:
    name: str
    run: Callable[[sa.Connection, float], Any]
    plans: list[Plan] = field(default_factory=list)
    total_ms: float = 0.0


def queued_rows(count: int, now: float) -> list[tuple[Any, ...]]:
    """Due messages accepted in the last minute for connection `default` (as accept stores
    them), in the column order of `_prefill.MESSAGE_COLUMNS`."""
    rows = []
    for n in range(count):
        at = now - 60 + 60 * n / max(count, 1)
        mid = id_before(at)[:10] + f"Q{n:015d}"
        row = (
            mid, MODULE, f"+3165{n % 10_000_000:07d}", "smsdesk", f"Queued {n}.", "gsm7", 1, 2,
            "queued", at, at, at, at + VALIDITY, 0, None, None, None, None, None, None, False,
            True, False, CONNECTION, "default", '["default"]', 0, "NL", 0, 0,
        )  # fmt: skip
        rows.append(row)
    return rows


def build(url: str, rows: int, queued: int) -> None:
    """Fill the database unless it holds messages already, then add the queued ones."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM messages")).scalar() or 0
    except sa.exc.DBAPIError:
        stored = 0  # no schema yet
    finally:
        engine.dispose()
    if stored:
        print(f"# reusing {stored:,} stored messages")
    else:
        print(f"# filling {rows:,} messages ...", flush=True)
        print(f"# {prefill(url, rows).describe()}", flush=True)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(messages.delete().where(messages.c.status == Status.QUEUED.value))
            write_rows(conn, messages, MESSAGE_COLUMNS, queued_rows(queued, time.time()))
    finally:
        engine.dispose()


@contextmanager
def recording(engine: sa.Engine) -> Iterator[list[Statement]]:
    """Every statement the engine sends while the block runs."""
    sent: list[Statement] = []

    def note(_conn: Any, _cursor: Any, sql: str, parameters: Any, _ctx: Any, many: bool) -> None:
        sent.append(Statement(sql, parameters, many))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


def operations(engine: sa.Engine) -> list[Operation]:
    with engine.connect() as conn:
        sent_pid = conn.execute(
            sa.select(messages.c.provider_message_id)
            .where(messages.c.status == Status.SENT.value)
            .limit(1)
        ).scalar()
        key_id = conn.execute(sa.text("SELECT id FROM api_keys LIMIT 1")).scalar() or "none"
    numbers = [f"+3165{n:07d}" for n in range(50)]

    def claim(conn: sa.Connection, now: float) -> Any:
        claimed, _ = claim_sendable(
            conn,
            connection_id=CONNECTION,
            module=MODULE,
            owner=OWNER,
            limit=CLAIM_LIMIT,
            now=now,
            lease_until=now + 60,
        )
        outcomes = [
            repo.Outcome(
                row.id,
                Status.SENT,
                "0",
                "accepted by the provider",
                provider_message_id=f"EXPLAIN{row.id}",
                tried=CONNECTION,
                attempt=row.attempts,
            )
            for row in claimed
        ]
        return repo.record_send_outcomes(conn, OWNER, outcomes, now)

    def report(pid: str) -> Callable[[sa.Connection, float], Any]:
        status = StatusReport(pid, Status.DELIVERED, "DELIVRD:000")
        return lambda conn, now: reports.apply_reports(conn, MODULE, [status], now)

    return [
        Operation("claim", claim),
        Operation("waiting", lambda c, now: repo.waiting_on(c, CONNECTION, now, 500, MODULE)),
        Operation("expire", lambda c, now: repo.expire_overdue(c, now)),
        Operation("lease expiry", lambda c, now: lease_expiry.release_expired_leases(c, now)),
        Operation(
            "awaiting reports",
            lambda c, now: reports.connections_awaiting_reports(c, ["smpp"], now),
        ),
        Operation("queue depth", lambda c, now: repo.queue_depth(c)),
        Operation("report (known provider id)", report(sent_pid or "none")),
        Operation("report (unknown provider id)", report("SIMnosuchmessage")),
        Operation(
            "accept lookups",
            lambda c, now: (repo.get_idempotency(c, key_id, "k-1"), opted_out(c, numbers)),
        ),
    ]


def run_rolled_back(engine: sa.Engine, work: Callable[[sa.Connection], Any]) -> float:
    """Milliseconds `work` took in a transaction that is then rolled back."""
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            started = time.perf_counter()
            work(conn)
            return 1000 * (time.perf_counter() - started)
        finally:
            transaction.rollback()


def explain(engine: sa.Engine, statement: Statement) -> Plan:
    postgres = engine.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    params = statement.first_parameters
    lines: list[str] = []

    def plan(conn: sa.Connection) -> None:
        rows = conn.exec_driver_sql(prefix + statement.sql, params).all()
        if postgres:
            lines.extend(str(row[0]) for row in rows)
        else:  # (id, parent, notused, detail): indent by depth
            depth: dict[int, int] = {}
            for row in rows:
                depth[row[0]] = depth.get(row[1], -1) + 1
                lines.append("  " * depth[row[0]] + str(row[3]))

    run_rolled_back(engine, plan)
    if postgres:
        found = [ln for ln in lines if "Execution Time" in ln]
        ms = float(re.findall(r"[\d.]+", found[0])[0]) if found else float("nan")
    else:
        ms = statistics.median(
            run_rolled_back(engine, lambda c: c.exec_driver_sql(statement.sql, params).all())
            if statement.sql.lstrip().upper().startswith(("SELECT", "WITH"))
            or "RETURNING" in statement.sql.upper()
            else run_rolled_back(engine, lambda c: c.exec_driver_sql(statement.sql, params))
            for _ in range(TIMED_RUNS)
        )
    return Plan(statement, lines, ms, verdict(lines, statement, postgres))


def verdict(lines: list[str], statement: Statement, postgres: bool) -> str:
    text = "\n".join(lines)
    if not statement.reads_hot_table():
        other = re.search(r"Seq Scan on (\w+)" if postgres else r"\bSCAN (\w+)$", text, re.M)
        return f"not messages; full scan of {other.group(1)}" if other else "not messages"
    tables = "|".join(HOT_TABLES)
    if postgres:
        if re.search(rf"Seq Scan on ({tables})\b", text):
            return "FULL SCAN"
        return "index"
    for line in lines:
        scan = re.search(rf"\bSCAN ({tables})\b(.*)", line)
        if scan:
            return "full index scan" if "INDEX" in scan.group(2) else "FULL SCAN"
    return "index"


def measure(engine: sa.Engine, ops: list[Operation]) -> None:
    now = time.time()
    for op in ops:
        with recording(engine) as sent:
            run_rolled_back(engine, lambda c, op=op: op.run(c, now))  # type: ignore[misc]
        op.total_ms = statistics.median(
            run_rolled_back(engine, lambda c, op=op: op.run(c, now))  # type: ignore[misc]
            for _ in range(TIMED_RUNS)
        )
        wanted = [
            s
            for s in sent
            if s.sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH"))
        ]
        op.plans = [explain(engine, s) for s in wanted]


MARK = r"\s*(?:\?|%\(\w+\)s(?:::\w+)?)\s*"
IN_LIST = re.compile(rf"\((?:{MARK},){{3,}}{MARK}\)")


def shorten(sql: str) -> str:
    """The statement on one line, with long IN lists as (?, ... n values)."""
    one_line = " ".join(sql.split())
    return IN_LIST.sub(lambda m: f"(?, ... {m.group(0).count(',') + 1} values)", one_line)


def report(ops: list[Operation], counts: dict[str, int]) -> bool:
    print("# messages by status: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    ok = True
    for op in ops:
        print(f"\n## {op.name}: {op.total_ms:.2f} ms for the whole operation (median)")
        for p in op.plans:
            sql = shorten(p.statement.sql)
            print(f"\n{sql[:600]}{' ...' if len(sql) > 600 else ''}")
            print(f"  parameters: {str(p.statement.first_parameters)[:200]}")
            for line in p.lines:
                print(f"    {line[:300]}{' ...' if len(line) > 300 else ''}")
            print(f"  -> {p.verdict}, {p.ms:.3f} ms")
            ok = ok and p.verdict != "FULL SCAN"
    print("\n# summary")
    for op in ops:
        verdicts = sorted({p.verdict for p in op.plans if p.verdict != "not messages"})
        verdicts = [v.removeprefix("not messages; ") for v in verdicts]
        worst = max((p.ms for p in op.plans), default=0.0)
        print(
            f"  {op.name:30} {', '.join(verdicts) or 'no messages statement':40} "
            f"{op.total_ms:8.2f} ms (slowest statement {worst:.2f} ms)"
        )
    print("all plans use an index" if ok else "SOME PLANS SCAN messages OR message_events FULLY")
    return ok


def status_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.status, sa.func.count()).group_by(messages.c.status)
        ).all()
    return {str(status): int(count) for status, count in rows}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--rows", type=int, default=1_000_000, help="finished messages stored")
    p.add_argument("--queued", type=int, default=3_000, help="due queued messages")
    p.add_argument(
        "--sqlite-file",
        type=Path,
        help="SQLite database to fill (or reuse, if it holds messages) and keep",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    with ExitStack() as stack:
        if opts.database == "postgres":
            admin_url, _ = stack.enter_context(running_postgres())
            url = stack.enter_context(scratch_postgres_database(admin_url))
        elif opts.sqlite_file:
            url = f"sqlite:///{opts.sqlite_file.resolve()}"
        else:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="smsdesk-explain-"))
            url = f"sqlite:///{scratch}/smsdesk.sqlite3"
        build(url, opts.rows, opts.queued)
        engine = create_engine(url)
        stack.callback(engine.dispose)
        ops = operations(engine)
        measure(engine, ops)
        return 0 if report(ops, status_counts(engine)) else 1


if __name__ == "__main__":
    sys.exit(main())
