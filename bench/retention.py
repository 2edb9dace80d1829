"""Retention while sending: accept latency of a real `smsdesk serve` with and without a purge.

For each database a fresh `smsdesk serve` (dispatcher and simulator in the same process, as
users run it) gets, in every round, a table of old finished messages (1,000,000 by default,
400 days old, one timeline entry each, bulk-inserted straight into the database), then:

  without  single-message POST /api/v1/messages at a steady rate (200/s) for --seconds;
  during   the same load while the old messages are purged (`smsdesk retention run` in a
           process of its own, or POST /api/v1/retention/run with --trigger api), from the
           purge's start to its end.

Latency is measured from each request's scheduled time (an open loop: a slow answer delays
the next ones and counts against them). Printed per round and as medians over the rounds:
p50/p99 without and during, the ratio during/without, and the purge's duration and rows/s
(messages and their timeline entries). The target: p99 during the purge < 2x without.

    python bench/retention.py                                   # SQLite and PostgreSQL, 3 rounds
    python bench/retention.py --database sqlite --rows 100000 --rounds 1    # a smoke test
    python bench/retention.py --trigger cli --batch 500 --share 0.25   # the CLI takes the tuning
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from _clients import Session, make_pool
from _server import Server, database, running_server, smsdesk_command

from smsdesk.store.retention import id_before

DAY = 86_400.0
TARGET_RATIO = 2.0
COLUMNS = (
    "id, module, recipient, sender, body, encoding, segments, priority, status, created_at, "
    "updated_at, next_attempt_at, expires_at, attempts, sent_at, final_at, is_test, "
    "delivery_report, transactional"
)


@dataclass
class Options:
    databases: list[str]
    rows: int
    rounds: int
    rate: float
    seconds: float
    connections: int
    trigger: str
    batch: int
    pause: float
    share: float
    as_json: bool


def old_rows(count: int, start: int) -> Iterator[tuple[Any, ...]]:
    """Finished messages 400 days old, ids in time order as the service makes them."""
    base = time.time() - 400 * DAY
    for n in range(start, start + count):
        at = base + n / 1000
        mid = id_before(at)[:10] + f"{n:016d}"
        yield (
            mid, "simulator", f"+3162{n % 10_000_000:07d}", "smsdesk",
            f"Old message {n}: your request was answered.", "GSM7", 1, 2, "delivered",
            at, at, at, at + 2 * DAY, 1, at, at + 5, False, True, False,
        )  # fmt: skip


def fill(server: Server, count: int, round_number: int) -> float:
    """Insert `count` old finished messages and one timeline entry each; seconds taken."""
    started = time.monotonic()
    engine = server.engine()
    offset = round_number * count
    chunk = 50_000
    try:
        with engine.begin() as conn:
            raw: Any = conn.connection.dbapi_connection
            postgres = engine.dialect.name == "postgresql"
            for first in range(0, count, chunk):
                rows = list(old_rows(min(chunk, count - first), offset + first))
                events = [(r[0], r[10], "delivered", True, "simulator") for r in rows]
                if postgres:
                    cursor = raw.cursor()
                    with cursor.copy(f"COPY messages ({COLUMNS}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                    with cursor.copy(
                        "COPY message_events (message_id, at, status, applied, source) FROM STDIN"
                    ) as copy:
                        for event in events:
                            copy.write_row(event)
                else:
                    marks = ", ".join("?" * len(rows[0]))
                    raw.executemany(f"INSERT INTO messages ({COLUMNS}) VALUES ({marks})", rows)
                    raw.executemany(
                        "INSERT INTO message_events (message_id, at, status, applied, source) "
                        "VALUES (?, ?, ?, ?, ?)",
                        events,
                    )
        settle(engine)
    finally:
        engine.dispose()
    return time.monotonic() - started


def settle(engine: sa.Engine) -> None:
    """Let the database absorb the bulk load (as months-old rows would be) before measuring:
    a checkpoint, and fresh statistics on PostgreSQL."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE messages, message_events"))
            conn.execute(sa.text("CHECKPOINT"))
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


async def steady_load(
    sessions: list[Session], rate: float, until: Any, counter: list[int]
) -> list[float]:
    """POST single messages at `rate`/s until `until()` is true; latencies (ms) from each
    request's scheduled time."""
    idle: asyncio.Queue[Session] = asyncio.Queue()
    for session in sessions:
        idle.put_nowait(session)
    latencies: list[float] = []
    failures: list[int] = []
    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    async def one(session: Session, scheduled: float, body: bytes) -> None:
        try:
            status, _ = await session.request("POST", "/api/v1/messages", body)
            if status != 201:
                failures.append(status)
            latencies.append((loop.time() - scheduled) * 1000)
        finally:
            idle.put_nowait(session)

    start = loop.time()
    n = 0
    while not until():
        scheduled = start + n / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        session = await idle.get()
        counter[0] += 1
        body = orjson.dumps({"to": f"+3161{counter[0] % 10_000_000:07d}", "text": "Bench."})
        task = asyncio.create_task(one(session, scheduled, body))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    await asyncio.gather(*tasks)
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. status {failures[0]}")
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def last_result(server: Server) -> dict[str, Any] | None:
    engine = server.engine()
    try:
        with engine.connect() as conn:
            text = conn.execute(
                sa.text("SELECT last_result FROM cluster_jobs WHERE name = 'retention'")
            ).scalar()
    finally:
        engine.dispose()
    return json.loads(text) if text else None


class Purge:
    """One purge, started by the command in its own process or through the API."""

    def __init__(self, server: Server, opts: Options) -> None:
        self.server = server
        self.opts = opts
        self.process: subprocess.Popen[bytes] | None = None
        self.before = last_result(server)
        self.finished = False

    def start(self) -> None:
        if self.opts.trigger == "cli":
            env = {**os.environ, "SMSDESK_DATA_DIR": str(self.server.data_dir)}
            if not self.server.database_url.startswith("sqlite"):
                env["SMSDESK_DATABASE_URL"] = self.server.database_url
            command = [*smsdesk_command(), "retention", "run", "--batch", str(self.opts.batch)]
            command += ["--pause", str(self.opts.pause), "--share", str(self.opts.share)]
            self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
            return
        answer = httpx.post(
            f"{self.server.base_urls[0]}/api/v1/retention/run",
            headers={"Authorization": f"Bearer {self.server.api_key}"},
        )
        if answer.status_code != 202:
            raise RuntimeError(f"POST /api/v1/retention/run: {answer.status_code} {answer.text}")

    async def watch(self) -> None:
        """Set `finished` once the purge has recorded its result."""
        while True:
            if self.process is not None and self.process.poll() is not None:
                if self.process.returncode != 0:
                    raise RuntimeError(f"smsdesk retention run exited {self.process.returncode}")
                break
            if self.process is None:
                result = await asyncio.to_thread(last_result, self.server)
                if result != self.before and result is not None:
                    break
            await asyncio.sleep(0.2)
        self.finished = True


async def one_round(server: Server, opts: Options, round_number: int) -> dict[str, Any]:
    fill_seconds = fill(server, opts.rows, round_number)
    pool = make_pool("raw", server.base_urls, server.api_key, opts.connections)
    sessions = [await pool.session() for _ in range(opts.connections)]
    counter = [round_number * 10_000_000]
    try:
        warm_until = time.monotonic() + 2
        await steady_load(sessions, opts.rate, lambda: time.monotonic() > warm_until, counter)
        quiet_until = time.monotonic() + opts.seconds
        without = await steady_load(
            sessions, opts.rate, lambda: time.monotonic() > quiet_until, counter
        )
        purge = Purge(server, opts)
        purge.start()
        watcher = asyncio.create_task(purge.watch())
        during = await steady_load(sessions, opts.rate, lambda: purge.finished, counter)
        await watcher
    finally:
        await pool.close()
    result = last_result(server) or {}
    seconds = result["finished_at"] - result["started_at"]
    purged = result["purged"]
    rows = purged["outbound"] + opts.rows  # the messages and their one timeline entry each
    if purged["outbound"] != opts.rows:
        raise RuntimeError(f"purged {purged['outbound']} messages, expected {opts.rows}")
    return {
        "fill_s": round(fill_seconds, 1),
        "without_p50_ms": percentile(without, 0.5),
        "without_p99_ms": percentile(without, 0.99),
        "during_p50_ms": percentile(during, 0.5),
        "during_p99_ms": percentile(during, 0.99),
        "during_requests": len(during),
        "purge_s": seconds,
        "messages_per_s": purged["outbound"] / seconds,
        "rows_per_s": rows / seconds,
    }


def describe(figures: dict[str, Any]) -> str:
    ratio = figures["during_p99_ms"] / figures["without_p99_ms"]
    return (
        f"p50 {figures['without_p50_ms']:.1f} -> {figures['during_p50_ms']:.1f} ms, "
        f"p99 {figures['without_p99_ms']:.1f} -> {figures['during_p99_ms']:.1f} ms "
        f"(x{ratio:.2f}); purge {figures['purge_s']:.1f} s, "
        f"{figures['messages_per_s']:,.0f} messages/s ({figures['rows_per_s']:,.0f} rows/s)"
    )


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def run(opts: Options) -> dict[str, Any]:
    report: dict[str, Any] = {"options": vars(opts), "databases": {}}
    for name in opts.databases:
        with ExitStack() as stack:
            url = stack.enter_context(database(name))
            server = stack.enter_context(running_server(dispatcher=True, database_url=url))
            tuning = (
                f"batch {opts.batch}, pause {opts.pause} s, share {opts.share}"
                if opts.trigger == "cli"
                else "the server's own batch, pause and share"
            )
            print(
                f"# {name}: {opts.rows:,} old messages per round, {opts.rate:.0f} POST/s, "
                f"purge by {opts.trigger}, {tuning}",
                flush=True,
            )
            runs = []
            for round_number in range(opts.rounds):
                figures = asyncio.run(one_round(server, opts, round_number))
                runs.append(figures)
                print(f"  round {round_number + 1}: {describe(figures)}", flush=True)
            median = median_of(runs)
            ratio = median["during_p99_ms"] / median["without_p99_ms"]
            verdict = "meets" if ratio < TARGET_RATIO else "MISSES"
            print(f"  MEDIAN of {len(runs)}: {describe(median)}", flush=True)
            print(f"  p99 during/without x{ratio:.2f}: {verdict} the target < x{TARGET_RATIO}")
            report["databases"][name] = {"runs": runs, "median": median, "p99_ratio": ratio}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", action="append", choices=["sqlite", "postgres"], dest="databases"
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="old messages per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="POST /api/v1/messages per s")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of 'without'")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--trigger", choices=["cli", "api"], default="cli")
    parser.add_argument("--batch", type=int, default=500, help="rows per purge transaction")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between batches")
    parser.add_argument("--share", type=float, default=0.5, help="purge's share of the time")
    parser.add_argument("--json", action="store_true", dest="as_json")
    a = parser.parse_args()
    opts = Options(
        databases=a.databases or ["sqlite", "postgres"],
        rows=a.rows,
        rounds=a.rounds,
        rate=a.rate,
        seconds=a.seconds,
        connections=a.connections,
        trigger=a.trigger,
        batch=a.batch,
        pause=a.pause,
        share=a.share,
        as_json=a.as_json,
    )
    report = run(opts)
    if opts.as_json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
