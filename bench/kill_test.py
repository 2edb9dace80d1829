"""Kill test: messages sent through the kannel module while `smsdesk` processes are killed.

A recording Kannel stand-in (tests/support/kannel_standin.py) answers each sendsms request
after a random 20-100 ms round trip and calls the message's dlr-url 50 ms later with a
"delivered" report, retrying a failed call every second up to 30 times (smsbox with
`http-request-retry = 30`, `http-queue-delay = 1`). The bench queues `--messages` messages,
then disrupts the processes at random moments while they send (tests/support/kill_run.py):

  sqlite    one `smsdesk serve`, SIGKILLed `--kills` times and started again each time
  postgres  `serve --no-dispatcher` + `--workers` workers; `--kills` SIGKILLs of random
            workers (each replaced) and `--freezes` SIGSTOPs of a worker holding claims,
            SIGCONT once others took its claims over after its lease ran out

It waits until every message is delivered and prints, per run and as medians:

  lost          accepted, never reached the stand-in
  not final     accepted, not delivered at the end
  sent twice    messages the stand-in received more than once, split into
                  in flight with no trace: nothing had come back from the first send
                  had evidence: its report had reached smsdesk before the claim that re-sent it

    python bench/kill_test.py                            # both databases, 3 runs each
    python bench/kill_test.py --database sqlite --runs 1 --details
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from tests.support.kannel_standin import KannelStandIn
from tests.support.kill_run import KillPlan, medians, run_postgres, run_sqlite
from tests.support.kill_tally import KillFigures
from tests.support.postgres import PostgresServer, admin_sql, start_postgres

import smsdesk


@contextmanager
def scratch_database(server: PostgresServer) -> Iterator[str]:
    name = f"kill_{uuid.uuid4().hex[:10]}"
    admin_sql(server, f"CREATE DATABASE {name}")
    try:
        yield server.url(name)
    finally:
        admin_sql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def one_run(
    database: str, plan: KillPlan, postgres: PostgresServer | None, keep: bool
) -> KillFigures:
    workdir = Path(tempfile.mkdtemp(prefix=f"smsdesk-kill-{database}-"))
    try:
        with KannelStandIn(seed=plan.seed) as standin:
            if postgres is None:
                return run_sqlite(standin, plan, workdir)
            with scratch_database(postgres) as url:
                return run_postgres(standin, plan, workdir, url)
    finally:
        if keep:
            print(f"    (logs kept in {workdir})", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def report(figures: KillFigures, details: bool) -> None:
    print(f"    {figures.summary()}", flush=True)
    if details:
        for duplicate in figures.duplicates:
            print(f"      {duplicate.describe()}", flush=True)


def bench(database: str, opts: argparse.Namespace, postgres: PostgresServer | None) -> None:
    plan = KillPlan(
        messages=opts.messages,
        kills=opts.kills if opts.kills is not None else (20 if postgres is None else 15),
        freezes=0 if postgres is None else opts.freezes,
        workers=opts.workers,
        lease_seconds=opts.lease_seconds or (30.0 if postgres is None else 5.0),
        concurrency=opts.concurrency,
    )
    shape = "one serve" if postgres is None else f"serve --no-dispatcher + {plan.workers} workers"
    print(
        f"# {database}: {shape}; {plan.messages} messages, {plan.kills} SIGKILLs, "
        f"{plan.freezes} freezes past the lease; lease {plan.lease_seconds:g} s, "
        f"concurrency {plan.concurrency}",
        flush=True,
    )
    runs = []
    for number in range(opts.runs):
        plan.seed = None if opts.seed is None else opts.seed + number
        figures = one_run(database, plan, postgres, opts.keep)
        print(f"  run {number + 1}:", flush=True)
        report(figures, opts.details)
        runs.append(figures)
    mid = medians(runs)
    print(
        f"  MEDIAN of {len(runs)}: lost {mid['lost']:g}, not final {mid['not_final']:g}, sent "
        f"twice {mid['doubled']:g} (in flight with no trace {mid['no_trace']:g}, had evidence "
        f"{mid['had_evidence']:g}), {mid['seconds']:.0f} s per run, restarts "
        f"{mid['restart_seconds']:.1f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--kills", type=int, help="20 on SQLite, 15 on PostgreSQL")
    parser.add_argument("--freezes", type=int, default=1, help="PostgreSQL only")
    parser.add_argument("--workers", type=int, default=3, help="PostgreSQL only")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--lease-seconds",
        type=float,
        help="30 on SQLite (longer than two restarts back to back, so that the reports Kannel "
        "retries get in before it runs out), 5 on PostgreSQL",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="the kannel module's limit")
    parser.add_argument("--seed", type=int, help="repeatable kill moments and round trips")
    parser.add_argument("--details", action="store_true", help="one line per message sent twice")
    parser.add_argument("--keep", action="store_true", help="keep the process logs")
    opts = parser.parse_args()
    print(f"# smsdesk from {Path(smsdesk.__file__).parent}", flush=True)
    if opts.database in ("sqlite", "both"):
        bench("sqlite", opts, None)
    if opts.database in ("postgres", "both"):
        postgres = start_postgres()
        try:
            bench("postgres", opts, postgres)
        finally:
            postgres.stop()


if __name__ == "__main__":
    main()
