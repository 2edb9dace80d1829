"""Throughput, latency and memory of a real `smsdesk serve`, measured from outside.

Scenarios (each run gets a fresh server, data directory and database):

  single   N single-message POST /api/v1/messages from C concurrent keep-alive clients:
           accepted requests/s and p50/p95/p99 latency.
  batch    M messages through POST /api/v1/messages/batch, 1,000 per request, a few clients:
           accepted messages/s.
  drain    M messages queued through the batch endpoint with the dispatcher and the simulator
           on: time until every message is delivered (end-to-end messages/s).
  backlog  the dispatcher off, 100,000 messages queued: the server's RSS and the time to list
           the first page of the outbox.

Every run checks that each request was answered 201/200 and that the messages stored are
exactly the ones accepted. Each scenario runs --repeat times; the median is printed last.
The server's CPU use (all its threads) and this client's are printed with each run: the
client must stay small next to the server on a 2-core machine, which is why the default
client is a lean raw-asyncio one (see _clients.py; --client httpx for comparison).

    python bench/throughput.py                     # everything, SQLite, 3 runs each
    python bench/throughput.py --quick             # small numbers, 1 run: a smoke test
    python bench/throughput.py --scenario single --no-dispatcher --json
    python bench/throughput.py --start-postgres    # a throwaway PostgreSQL (fsync=off)
    python bench/throughput.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
    python bench/throughput.py --processes 2       # two `smsdesk serve` on one database
    python bench/throughput.py --profile /tmp/prof --profile-gil   # py-spy the server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from _clients import Pool, Session, make_pool
from _profile import PySpy, summarise
from _server import Server, running_server, scratch_postgres_database

# Targets on a 2-core machine with SQLite and the simulator module.
TARGETS: dict[str, tuple[str, float]] = {
    "single.accepted_per_s": (">=", 3000),
    "single.p99_ms": ("<", 50),
    "batch.messages_per_s": (">=", 20000),
    "backlog.rss_mb": ("<", 300),
}
Figures = dict[str, Any]


@dataclass
class Options:
    scenarios: list[str]
    requests: int
    concurrency: int
    batch_messages: int
    batch_size: int
    batch_clients: int
    drain_messages: int
    backlog: int
    repeat: int
    client: str
    dispatcher: bool
    processes: int
    start_postgres: bool
    database_url: str | None
    log_level: str
    profile: Path | None
    profile_gil: bool
    keep: bool
    as_json: bool


@dataclass
class Recorder:
    """What the clients saw during a measured phase."""

    latencies: array[float] = field(default_factory=lambda: array("d"))
    starts: array[float] = field(default_factory=lambda: array("d"))
    bodies: list[bytes] = field(default_factory=list)
    errors: Counter[int] = field(default_factory=Counter)
    error_sample: bytes = b""

    def record(self, expected: int, status: int, body: bytes, started: float, ended: float) -> None:
        self.starts.append(started)
        self.latencies.append(ended - started)
        if status == expected:
            self.bodies.append(body)
        else:
            self.errors[status] += 1
            self.error_sample = body[:300]


def number(i: int) -> str:
    """A valid Dutch mobile number, different for each i below ten million."""
    return f"+3161{i % 10_000_000:07d}"


def text(i: int) -> str:
    return f"Bench {i}: your request was answered. Reply STOP to opt out."


def single_bodies(count: int, start: int = 0) -> list[bytes]:
    return [orjson.dumps({"to": number(i), "text": text(i)}) for i in range(start, start + count)]


def batch_bodies(total: int, size: int) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "messages": [
                    {"to": number(i), "text": text(i)} for i in range(s, min(s + size, total))
                ]
            }
        )
        for s in range(0, total, size)
    ]


def percentile(values: array[float] | list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def drive(
    sessions: list[Session], path: str, bodies: list[bytes], expected: int, rec: Recorder
) -> float:
    """Send every body, each session one request at a time; the wall time in seconds."""
    queue: Iterator[bytes] = iter(bodies)

    async def client(session: Session) -> None:
        for body in queue:
            started = time.perf_counter()
            status, answer = await session.request("POST", path, body)
            rec.record(expected, status, answer, started, time.perf_counter())

    started = time.perf_counter()
    await asyncio.gather(*(client(s) for s in sessions))
    return time.perf_counter() - started


def accepted_ids_single(rec: Recorder) -> list[str]:
    return [orjson.loads(body)["id"] for body in rec.bodies]


def accepted_ids_batch(rec: Recorder) -> tuple[list[str], int]:
    ids: list[str] = []
    rejected = 0
    for body in rec.bodies:
        answer = orjson.loads(body)
        rejected += answer["rejected"]
        ids += [r["message"]["id"] for r in answer["results"] if r["accepted"]]
    return ids, rejected


def verify(server: Server, ids: list[str], *recorders: Recorder) -> Figures:
    """Every request answered as expected, and the stored messages are exactly those accepted."""
    stored = server.stored_ids()
    accepted = set(ids)
    errors = sum((rec.errors for rec in recorders), Counter[int]())
    figures: Figures = {
        "http_errors": sum(errors.values()),
        "stored": len(stored),
        "stored_matches_accepted": stored == accepted and len(accepted) == len(ids),
    }
    if errors:
        figures["error_statuses"] = dict(errors)
        sample = next(rec.error_sample for rec in recorders if rec.errors)
        figures["error_sample"] = sample.decode(errors="replace")
    if stored != accepted:
        figures["missing"] = len(accepted - stored)
        figures["unexpected"] = len(stored - accepted)
    return figures


def machine_busy_seconds() -> float:
    """CPU time all processes on the machine have used (user, system, irq, steal), /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@contextmanager
def measured(server: Server, opts: Options, label: str, figures: Figures) -> Iterator[None]:
    """CPU used by the server and by this client over a phase (and a py-spy profile of it)."""
    spy = None
    if opts.profile is not None:
        opts.profile.mkdir(parents=True, exist_ok=True)
        spy = PySpy(server.pid, opts.profile / f"{label}.txt", gil_only=opts.profile_gil)
        time.sleep(0.5)  # let py-spy attach before the load starts
    server_cpu, client_cpu, wall = server.cpu_seconds(), time.process_time(), time.perf_counter()
    machine_cpu = machine_busy_seconds()
    try:
        yield
    finally:
        if spy is not None:
            figures["profile"] = str(spy.stop())
    wall = time.perf_counter() - wall
    figures["server_cpu_cores"] = round((server.cpu_seconds() - server_cpu) / wall, 2)
    figures["client_cpu_cores"] = round((time.process_time() - client_cpu) / wall, 2)
    # Anything else busy on the machine (other processes) makes a run less trustworthy.
    other = (machine_busy_seconds() - machine_cpu) / wall
    figures["other_cpu_cores"] = round(
        max(0.0, other - figures["server_cpu_cores"] - figures["client_cpu_cores"]), 2
    )
    figures["server_rss_peak_mb"] = round(server.rss_kib("VmHWM") / 1024, 1)


async def open_sessions(server: Server, opts: Options, count: int) -> tuple[Pool, list[Session]]:
    pool = make_pool(opts.client, server.base_urls, server.api_key, count)
    sessions = [await pool.session() for _ in range(count)]
    # The first request verifies the key (argon2); later ones hit the key cache.
    status, body = await sessions[0].request("GET", "/api/v1/messages?limit=1")
    if status != 200:
        raise RuntimeError(f"the API key does not work: {status} {body[:200]!r}")
    return pool, sessions


def latency_figures(rec: Recorder) -> Figures:
    """Percentiles, the worst request and when it started (seconds into the phase)."""
    ms = [1000 * s for s in rec.latencies]
    if not ms:
        return {}
    worst = max(range(len(ms)), key=ms.__getitem__)
    return {
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(ms[worst], 2),
        "max_at_s": round(rec.starts[worst] - min(rec.starts), 2),
        "over_1s": sum(1 for m in ms if m > 1000),
    }


async def scenario_single(server: Server, opts: Options, label: str) -> Figures:
    pool, sessions = await open_sessions(server, opts, opts.concurrency)
    warm, rec = Recorder(), Recorder()
    try:
        await drive(sessions, "/api/v1/messages", single_bodies(len(sessions)), 201, warm)
        bodies = single_bodies(opts.requests, start=len(sessions))
        cpu: Figures = {}
        with measured(server, opts, label, cpu):
            seconds = await drive(sessions, "/api/v1/messages", bodies, 201, rec)
    finally:
        await pool.close()
    ids = accepted_ids_single(warm) + accepted_ids_single(rec)
    figures: Figures = {
        "requests": opts.requests,
        "concurrency": opts.concurrency,
        "seconds": round(seconds, 3),
        "accepted_per_s": round(len(rec.bodies) / seconds, 1),
    }
    return figures | latency_figures(rec) | cpu | verify(server, ids, warm, rec)


async def enqueue_batches(
    server: Server, opts: Options, total: int, label: str | None
) -> tuple[Figures, list[str], Recorder]:
    """Queue `total` messages through the batch endpoint (measured and profiled if `label`)."""
    pool, sessions = await open_sessions(server, opts, opts.batch_clients)
    rec = Recorder()
    bodies = batch_bodies(total, opts.batch_size)
    cpu: Figures = {}
    phase = measured(server, opts, label, cpu) if label else nullcontext()
    try:
        with phase:
            seconds = await drive(sessions, "/api/v1/messages/batch", bodies, 200, rec)
    finally:
        await pool.close()
    ids, rejected = accepted_ids_batch(rec)
    ms = [1000 * s for s in rec.latencies]
    figures: Figures = {
        "messages": total,
        "batch_size": opts.batch_size,
        "clients": opts.batch_clients,
        "seconds": round(seconds, 3),
        "messages_per_s": round(len(ids) / seconds, 1),
        "rejected": rejected,
        "batch_p50_ms": round(percentile(ms, 0.50), 1),
        "batch_max_ms": round(max(ms), 1),
    }
    return figures | cpu, ids, rec


async def scenario_batch(server: Server, opts: Options, label: str) -> Figures:
    figures, ids, rec = await enqueue_batches(server, opts, opts.batch_messages, label)
    return figures | verify(server, ids, rec)


FINAL = ("delivered", "undelivered", "failed", "expired", "cancelled")


async def wait_until_final(
    server: Server, count: int, started: float, timeout: float
) -> tuple[float | None, float, dict[str, int]]:
    """Poll the database until `count` messages are final: (all sent at, all final at,
    statuses), in seconds since `started`."""
    engine = server.engine()
    all_sent_at = None
    counts: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            counts = server.status_counts(engine)
            if all_sent_at is None and counts.get("queued", 0) + counts.get("sending", 0) == 0:
                all_sent_at = time.perf_counter() - started
            if sum(counts.get(s, 0) for s in FINAL) >= count:
                break
            await asyncio.sleep(0.2)
    finally:
        engine.dispose()
    return all_sent_at, time.perf_counter() - started, counts


async def scenario_drain(server: Server, opts: Options, label: str) -> Figures:
    cpu: Figures = {}
    with measured(server, opts, label, cpu):
        started = time.perf_counter()
        figures, ids, rec = await enqueue_batches(server, opts, opts.drain_messages, None)
        accepted_at = time.perf_counter() - started
        timeout = max(120.0, opts.drain_messages / 50)
        all_sent_at, done_at, counts = await wait_until_final(server, len(ids), started, timeout)
    return (
        {
            "messages": len(ids),
            "accept_messages_per_s": figures["messages_per_s"],
            "accept_phase_s": round(accepted_at, 2),
            "all_sent_s": round(all_sent_at, 2) if all_sent_at is not None else None,
            "all_final_s": round(done_at, 2),
            "sent_per_s": round(len(ids) / all_sent_at, 1) if all_sent_at else None,
            "end_to_end_per_s": round(sum(counts.get(s, 0) for s in FINAL) / done_at, 1),
            "statuses": counts,
        }
        | cpu
        | verify(server, ids, rec)
    )


async def timed_get(session: Session, path: str, times: int = 5) -> tuple[float, float]:
    """The first and the median duration of GET `path`, in milliseconds."""
    durations = []
    for _ in range(times):
        started = time.perf_counter()
        status, body = await session.request("GET", path)
        durations.append(1000 * (time.perf_counter() - started))
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
    return round(durations[0], 2), round(statistics.median(durations), 2)


async def scenario_backlog(server: Server, opts: Options, label: str) -> Figures:
    idle_kib = server.rss_kib()
    figures, ids, rec = await enqueue_batches(server, opts, opts.backlog, label)
    await asyncio.sleep(1.0)  # let the allocator settle after the last request
    pool, (session,) = await open_sessions(server, opts, 1)
    try:
        newest = await timed_get(session, "/api/v1/messages?limit=50")
        queued = await timed_get(session, "/api/v1/messages?status=queued&limit=50")
        metrics = await timed_get(session, "/metrics", times=3)
    finally:
        await pool.close()
    db_bytes = server.database_bytes()
    return {
        "queued": len(ids),
        "enqueue_messages_per_s": figures["messages_per_s"],
        "rss_idle_mb": round(idle_kib / 1024, 1),
        "rss_mb": round(server.rss_kib() / 1024, 1),
        "rss_peak_mb": round(server.rss_kib("VmHWM") / 1024, 1),
        "first_page_first_ms": newest[0],
        "first_page_ms": newest[1],
        "queued_page_first_ms": queued[0],
        "queued_page_ms": queued[1],
        "metrics_ms": metrics[1],
        "database_mb": round(db_bytes / 2**20, 1) if db_bytes is not None else None,
    } | verify(server, ids, rec)


Scenario = Callable[[Server, Options, str], Coroutine[Any, Any, Figures]]
SCENARIOS: dict[str, tuple[Scenario, bool | None]] = {
    # name: (coroutine, dispatcher on? None = as --dispatcher says)
    "single": (scenario_single, None),
    "batch": (scenario_batch, None),
    "drain": (scenario_drain, True),
    "backlog": (scenario_backlog, False),
}


def run_once(name: str, run: int, opts: Options, runner: asyncio.Runner) -> Figures:
    scenario, dispatcher = SCENARIOS[name]
    with ExitStack() as stack:
        url = opts.database_url
        if url is not None:
            url = stack.enter_context(scratch_postgres_database(url))
        server = stack.enter_context(
            running_server(
                dispatcher=opts.dispatcher if dispatcher is None else dispatcher,
                database_url=url,
                processes=opts.processes,
                log_level=opts.log_level,
                keep=opts.keep,
            )
        )
        return runner.run(scenario(server, opts, f"{name}-run{run}"))


def medians(runs: list[Figures]) -> Figures:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    out: Figures = {}
    for key in keys:
        values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
        if values:
            out[key] = round(statistics.median(values), 2)
    out["all_checks_passed"] = all(
        r["stored_matches_accepted"] and not r["http_errors"] for r in runs
    )
    return out


def target_note(name: str, key: str, value: Any) -> str:
    target = TARGETS.get(f"{name}.{key}")
    if target is None or not isinstance(value, int | float):
        return ""
    op, bound = target
    met = value >= bound if op == ">=" else value < bound
    return f" [target {op} {bound:g}: {'met' if met else 'MISSED'}]"


def describe(name: str, figures: Figures) -> str:
    parts = [
        f"{k}={v}{target_note(name, k, v)}"
        for k, v in figures.items()
        if k not in ("error_sample", "profile")
    ]
    return ", ".join(parts)


def machine() -> Figures:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def say(line: str, opts: Options) -> None:
    """Progress lines go to stdout, or to stderr when stdout carries the JSON report."""
    print(line, file=sys.stderr if opts.as_json else sys.stdout, flush=True)


def run_scenario(name: str, opts: Options, runner: asyncio.Runner) -> Figures:
    runs = []
    for run in range(1, opts.repeat + 1):
        figures = run_once(name, run, opts, runner)
        runs.append(figures)
        say(f"{name:8} run {run}/{opts.repeat}: {describe(name, figures)}", opts)
        if "error_sample" in figures:
            say(f"{name:8}   first error: {figures['error_sample']}", opts)
        if "profile" in figures:
            say("\n".join(summarise(Path(figures["profile"]))), opts)
    median = medians(runs)
    say(f"{name:8} MEDIAN of {len(runs)}: {describe(name, median)}", opts)
    return {"runs": runs, "median": median}


def run_all(opts: Options) -> Figures:
    with ExitStack() as stack:
        if opts.start_postgres:
            from tests.support.postgres import start_postgres

            postgres = start_postgres()
            stack.callback(postgres.stop)
            opts.database_url = postgres.url("postgres")
        report: Figures = {"machine": machine(), "options": _options_json(opts), "scenarios": {}}
        database = "sqlite" if not opts.database_url else "postgresql"
        database += " (throwaway, fsync=off)" if opts.start_postgres else ""
        say(
            f"# smsdesk throughput on {report['machine']}; client={opts.client}, "
            f"database={database}, processes={opts.processes}, "
            f"dispatcher in single/batch={'on' if opts.dispatcher else 'off'}",
            opts,
        )
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            for name in opts.scenarios:
                report["scenarios"][name] = run_scenario(name, opts, runner)
    return report


def _options_json(opts: Options) -> Figures:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()}


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        dest="scenarios",
        help="run only this scenario (repeatable); default: all",
    )
    p.add_argument("--requests", type=int, default=20_000, help="single: requests (N)")
    p.add_argument("--concurrency", type=int, default=128, help="single: concurrent clients (C)")
    p.add_argument("--batch-messages", type=int, default=100_000, help="batch: messages (M)")
    p.add_argument("--batch-size", type=int, default=1000, help="messages per batch request")
    p.add_argument("--batch-clients", type=int, default=4, help="concurrent batch clients")
    p.add_argument("--drain-messages", type=int, default=20_000, help="drain: messages")
    p.add_argument("--backlog", type=int, default=100_000, help="backlog: messages queued")
    p.add_argument("--repeat", type=int, default=3, help="runs per scenario (R)")
    p.add_argument("--quick", action="store_true", help="small numbers and one run")
    p.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="raw asyncio client (default, light) or httpx.AsyncClient",
    )
    p.add_argument(
        "--no-dispatcher",
        dest="dispatcher",
        action="store_false",
        help="single and batch: run the server without its dispatcher",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run this many `smsdesk serve` processes on one database; clients are spread\n"
        "over them round-robin (only the first runs the dispatcher)",
    )
    p.add_argument(
        "--start-postgres",
        action="store_true",
        help="start a throwaway PostgreSQL (tests.support.postgres; note: fsync=off)",
    )
    p.add_argument(
        "--database-url",
        help="PostgreSQL server to use (a scratch database is created and dropped per run;\n"
        "needs CREATEDB), e.g. postgresql://postgres@127.0.0.1/postgres",
    )
    p.add_argument(
        "--log-level",
        default="WARNING",
        help="the server's SMSDESK_LOG_LEVEL (its own default, INFO, logs a line per message)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        help="record py-spy profiles of the (first) server process here during each\n"
        "measured phase and print a summary (pip install py-spy)",
    )
    p.add_argument(
        "--profile-gil", action="store_true", help="profile only the thread holding the GIL"
    )
    p.add_argument("--keep", action="store_true", help="keep each run's data directory")
    p.add_argument(
        "--json",
        dest="as_json",
        action="store_true",
        help="print one JSON document on stdout (progress goes to stderr)",
    )
    a = p.parse_args(argv)
    if a.quick:
        a.requests, a.concurrency, a.batch_messages = 2000, 32, 10_000
        a.drain_messages, a.backlog, a.repeat = 2000, 10_000, 1
    return Options(
        scenarios=a.scenarios or list(SCENARIOS),
        requests=a.requests,
        concurrency=a.concurrency,
        batch_messages=a.batch_messages,
        batch_size=a.batch_size,
        batch_clients=a.batch_clients,
        drain_messages=a.drain_messages,
        backlog=a.backlog,
        repeat=a.repeat,
        client=a.client,
        dispatcher=a.dispatcher,
        processes=a.processes,
        start_postgres=a.start_postgres,
        database_url=a.database_url,
        log_level=a.log_level,
        profile=a.profile,
        profile_gil=a.profile_gil,
        keep=a.keep,
        as_json=a.as_json,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    report = run_all(opts)
    if opts.as_json:
        print(json.dumps(report, indent=2))
    ok = all(s["median"]["all_checks_passed"] for s in report["scenarios"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
