"""A 100,000-recipient mailing through a real `smsdesk serve`, with service SMS sent meanwhile.

A fresh `smsdesk serve` (dispatcher, mailing sender and the simulator's delivery reports in the
one process, as users run it; SQLite by default) gets a customer for every valid row of the
file, with consent, 4 of their numbers on the opt-out list (bulk-inserted straight into the
database, except the opt-outs, which go through the API). Then, through the API as an
administrator would:

  check     a CSV of N rows (N-14 valid, 3 invalid, 2 duplicates, 4 opted out, 5 without
            consent) uploaded to a new mailing: time from the upload to the per-row report;
  summary   the counts, segments and cost before sending: time of GET .../summary;
  send      the mailing started and followed until done; meanwhile a single service SMS at
            priority 1 every 50 ms (POST /api/v1/messages), each one's accept -> delivered
            latency read from the database afterwards (its created_at to its delivered
            event), and the mailing's progress rate from its live statistics.

The server's resident memory is sampled from /proc/<pid>/status every 50 ms: the peak of each
phase, and VmHWM (the kernel's own peak) at the end. Targets: peak RSS < 300 MB, service SMS
p99 < 2 s (the simulator's report delay included). The load average is printed with the
figures, since other work on the machine slows everything down.

    python bench/mailing.py                                   # 100,000 rows on SQLite
    python bench/mailing.py --recipients 2000                 # a smoke run
    python bench/mailing.py --database postgres --recipients 20000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from _server import Server, database, running_server, scratch_postgres_database
from tests.support.mailing_run import (
    RecipientsFile,
    act,
    api_client,
    create_mailing,
    ok,
    opt_out,
    recipients_file,
    upload,
)
from tests.support.mailing_run import (
    statistics as mailing_statistics,
)

from smsdesk.store.customers import insert_customers
from smsdesk.store.mailing_consents import set_consents
from smsdesk.store.tables import message_events, messages

BLOCKED_ROWS = 14  # 3 invalid + 2 duplicates + 4 opted out + 5 without consent
RSS_TARGET_MB = 300.0
P99_TARGET_S = 2.0


@dataclass
class Options:
    database: str
    recipients: int
    report_delay: float
    interval: float
    priority: int
    progress_every: float
    timeout: float
    keep: bool
    as_json: bool


class MemorySampler:
    """The server's VmRSS every `interval` seconds in a thread of its own; the peak per phase."""

    def __init__(self, server: Server, interval: float = 0.05) -> None:
        self.server = server
        self.interval = interval
        self.phase = "setup"
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self.server.rss_kib("VmRSS")
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class ServiceLoad:
    """Single service SMS, one every `interval` seconds (an open loop), until stopped."""

    client: httpx.Client
    interval: float
    priority: int
    ids: list[str] = field(default_factory=list)
    accept_seconds: list[float] = field(default_factory=list)
    refused: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        for n in range(10**9):
            due = start + n * self.interval
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            body = {"to": f"+3165{n:07d}", "text": "Your code is 1234", "priority": self.priority}
            began = time.monotonic()
            response = self.client.post("/api/v1/messages", json=body)
            self.accept_seconds.append(time.monotonic() - began)
            if response.status_code == 201:
                self.ids.append(response.json()["id"])
            else:
                self.refused += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def seed_audience(server: Server, client: httpx.Client, rows: RecipientsFile) -> None:
    """A consenting customer for each valid and opted-out row, customers who never consented
    or withdrew, straight into the database; the opt-outs through the API."""
    now = time.time()
    numbers = [*rows.valid, *rows.opted_out, *rows.never, *rows.withdrawn]
    ids = {n: f"01BENCHCUST{i:015d}" for i, n in enumerate(numbers)}
    customers = [
        {
            "id": ids[n],
            "name": f"Customer {i}",
            "language": "nl",
            "created_from_sms": False,
            "created_at": now,
            "updated_at": now,
        }
        for i, n in enumerate(numbers)
    ]
    links = [{"number": n, "customer_id": ids[n]} for n in numbers]
    engine = server.engine()
    try:
        with engine.begin() as conn:
            for first in range(0, len(customers), 5000):
                part = slice(first, first + 5000)
                insert_customers(conn, customers[part], links[part])
            consenting = [ids[n] for n in (*rows.valid, *rows.opted_out, *rows.withdrawn)]
            set_consents(conn, consenting, given=True, source="bench", now=now)
            set_consents(
                conn, [ids[n] for n in rows.withdrawn], given=False, source="bench", now=now
            )
    finally:
        engine.dispose()
    opt_out(client, rows.opted_out)


def delivery_latencies(server: Server, message_ids: list[str]) -> tuple[list[float], int]:
    """Seconds from accepted (created_at) to the delivered event, of the messages delivered;
    and how many were not delivered."""
    delivered_at = (
        sa.select(sa.func.min(message_events.c.at))
        .where(message_events.c.message_id == messages.c.id)
        .where(message_events.c.status == "delivered")
        .scalar_subquery()
    )
    found: list[float] = []
    engine = server.engine()
    try:
        with engine.connect() as conn:
            for first in range(0, len(message_ids), 500):
                query = sa.select(messages.c.created_at, delivered_at).where(
                    messages.c.id.in_(message_ids[first : first + 500])
                )
                found += [at - created for created, at in conn.execute(query) if at is not None]
    finally:
        engine.dispose()
    return found, len(message_ids) - len(found)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def configure_simulator(client: httpx.Client, report_delay: float) -> None:
    ok(
        client.put(
            "/api/v1/settings",
            json={
                "module": "simulator",
                "sender": "Smsdesk",
                "default_country_code": "+31",
                "module_settings": {"simulator": {"report_delay": report_delay}},
            },
        )
    )


def follow(client: httpx.Client, mailing_id: str, opts: Options) -> list[tuple[float, int]]:
    """Poll the live statistics until the mailing is done; (seconds, recipients settled)."""
    start = time.monotonic()
    progress: list[tuple[float, int]] = []
    while True:
        time.sleep(opts.progress_every)
        stats = mailing_statistics(client, mailing_id)["messages"]
        done = sum(n for status, n in stats.items() if status not in ("waiting", "queued"))
        elapsed = time.monotonic() - start
        progress.append((elapsed, done))
        print(f"    {elapsed:6.1f} s  {done:>7,} sent or settled  {stats}", flush=True)
        status = ok(client.get(f"/api/v1/mailings/{mailing_id}"))["status"]
        if status == "done":
            return progress
        if elapsed > opts.timeout:
            raise TimeoutError(f"the mailing is still {status} after {elapsed:.0f} s")


def run_mailing(server: Server, opts: Options) -> dict[str, Any]:
    figures: dict[str, Any] = {"load_before": os.getloadavg()}
    key = server.api_key
    rows = recipients_file(opts.recipients - BLOCKED_ROWS)
    with (
        api_client(server.base_urls[0], key, timeout=900) as client,
        api_client(server.base_urls[0], key) as service_client,
        MemorySampler(server) as memory,
    ):
        configure_simulator(client, opts.report_delay)
        seed_audience(server, client, rows)
        mailing_id = create_mailing(client)

        memory.phase = "check"
        began = time.monotonic()
        report = upload(client, mailing_id, rows.csv)
        figures["check_s"] = time.monotonic() - began
        assert report["counts"] == rows.counts(), report["counts"]
        print(f"  check: {opts.recipients:,} rows in {figures['check_s']:.2f} s", flush=True)

        memory.phase = "summary"
        began = time.monotonic()
        summary = ok(client.get(f"/api/v1/mailings/{mailing_id}/summary"))
        figures["summary_s"] = time.monotonic() - began
        assert summary["messages"] == len(rows.valid), summary
        print(f"  summary: {figures['summary_s']:.2f} s", flush=True)

        memory.phase = "send"
        load = ServiceLoad(service_client, opts.interval, opts.priority)
        act(client, mailing_id, "start")
        load.start()
        try:
            figures["progress"] = follow(client, mailing_id, opts)
        finally:
            load.stop()
        mailing = ok(client.get(f"/api/v1/mailings/{mailing_id}"))
        final = mailing_statistics(client, mailing_id)
        memory.phase = "after"
    figures["peaks_mb"] = {phase: kib / 1024 for phase, kib in memory.peaks.items()}
    figures["vmhwm_mb"] = server.rss_kib("VmHWM") / 1024
    started = time.mktime(time.strptime(mailing["started_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    finished = time.mktime(time.strptime(mailing["finished_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    figures["send_s"] = finished - started
    figures["mailing_per_s"] = len(rows.valid) / max(figures["send_s"], 1.0)
    figures["final"] = final
    figures["service"] = service_figures(server, load)
    figures["load_after"] = os.getloadavg()
    return figures


def service_figures(server: Server, load: ServiceLoad) -> dict[str, Any]:
    """Accept -> delivered of the service SMS; waits (up to 60 s) for the last reports."""
    deadline = time.monotonic() + 60
    while True:
        latencies, missing = delivery_latencies(server, load.ids)
        if missing == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return {
        "sent": len(load.ids),
        "refused": load.refused,
        "not_delivered": missing,
        "p50_s": percentile(latencies, 0.50),
        "p99_s": percentile(latencies, 0.99),
        "max_s": max(latencies, default=float("nan")),
        "accept_p99_s": percentile(load.accept_seconds, 0.99),
    }


def describe(opts: Options, figures: dict[str, Any]) -> str:
    service = figures["service"]
    peak = max(figures["peaks_mb"].get(p, 0.0) for p in ("check", "summary", "send"))
    lines = [
        f"# {opts.database}: {opts.recipients:,} rows, simulator report delay "
        f"{opts.report_delay} s, service SMS every {opts.interval * 1000:.0f} ms at priority "
        f"{opts.priority}",
        f"  load average before {figures['load_before'][0]:.2f}, after "
        f"{figures['load_after'][0]:.2f} (1 min), {os.cpu_count()} CPUs",
        f"  check (upload -> report)   {figures['check_s']:8.2f} s "
        f"({opts.recipients / figures['check_s']:,.0f} rows/s)",
        f"  summary                    {figures['summary_s']:8.2f} s",
        f"  send (started -> done)     {figures['send_s']:8.0f} s "
        f"({figures['mailing_per_s']:,.0f} messages/s)  final {figures['final']['messages']}",
        "  peak RSS (MB)              "
        + ", ".join(f"{k} {v:.0f}" for k, v in figures["peaks_mb"].items())
        + f"; VmHWM {figures['vmhwm_mb']:.0f}"
        + f"  -> {'meets' if peak < RSS_TARGET_MB else 'MISSES'} < {RSS_TARGET_MB:.0f} MB",
        f"  service SMS                {service['sent']} sent, {service['refused']} refused, "
        f"{service['not_delivered']} not delivered; accept -> delivered p50 "
        f"{service['p50_s']:.3f} s, p99 {service['p99_s']:.3f} s, max {service['max_s']:.3f} s"
        f"  -> {'meets' if service['p99_s'] < P99_TARGET_S else 'MISSES'} p99 < "
        f"{P99_TARGET_S:.0f} s",
    ]
    return "\n".join(lines)


def run(opts: Options) -> dict[str, Any]:
    with ExitStack() as stack:
        url = stack.enter_context(database(opts.database))
        if url is not None:
            url = stack.enter_context(scratch_postgres_database(url))
        server = stack.enter_context(
            running_server(dispatcher=True, database_url=url, keep=opts.keep, timeout=120)
        )
        return run_mailing(server, opts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--recipients", type=int, default=100_000, help="rows in the CSV")
    parser.add_argument("--report-delay", type=float, default=0.2, help="simulator, seconds")
    parser.add_argument("--interval", type=float, default=0.05, help="between service SMS, s")
    parser.add_argument("--priority", type=int, choices=[1, 2], default=1)
    parser.add_argument("--progress-every", type=float, default=5.0, help="seconds")
    parser.add_argument("--timeout", type=float, default=3600.0, help="for the send, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--json", action="store_true", dest="as_json")
    opts = Options(**vars(parser.parse_args()))
    if opts.recipients < BLOCKED_ROWS + 20:
        parser.error(f"--recipients must be at least {BLOCKED_ROWS + 20}")
    figures = run(opts)
    print(describe(opts, figures))
    if opts.as_json:
        print(json.dumps({"options": asdict(opts), **figures}, default=str))


if __name__ == "__main__":
    main()
