"""`smsdesk cluster status`: the processes sharing this database, who leads each job, and the
shared rate limiter, as the processes' heartbeats (`cluster_processes`), the job locks (on
PostgreSQL) and the buckets say."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from smsdesk.cluster import JOBS
from smsdesk.commands.common import DatabaseUrl, DataDir, open_service, out, when
from smsdesk.store.cluster_processes import processes
from smsdesk.store.leadership import holders
from smsdesk.store.rate_limits import limiter_state

app = typer.Typer(
    help="The processes sharing this database and the jobs they lead.", no_args_is_help=True
)

# A process beats every 5 s: one silent for three beats has stopped, died or is frozen.
SILENT_AFTER = 15.0


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Each process (role, jobs it leads, messages it holds leased, last heartbeat), the
    leader of each once-per-cluster job, and the shared rate-limit buckets."""
    service = open_service(data_dir, database_url)
    now = time.time()
    seen: list[dict[str, Any]] = [
        {
            "process": p.id,
            "host": p.host,
            "pid": p.pid,
            "role": p.role,
            "leads": list(p.jobs),
            "leased_messages": p.leased,
            "started_at": p.started_at,
            "last_seen": p.last_seen,
            "alive": now - p.last_seen <= SILENT_AFTER,
        }
        for p in processes(service.engine)
    ]
    # PostgreSQL says who holds each job's lock now; elsewhere the heartbeats tell.
    leaders = holders(service.engine, JOBS) or {
        job: next((p["process"] for p in seen if p["alive"] and job in p["leads"]), None)
        for job in JOBS
    }
    limiter = limiter_state(service.engine, now)
    if as_json:
        document = {"processes": seen, "leaders": leaders, "limiter": limiter}
        out.print_json(json.dumps(document))
        return
    _print_processes(seen, now)
    jobs = Table("job", "leader")
    for job, leader in leaders.items():
        jobs.add_row(job, leader or "none (a running worker takes it within seconds)")
    out.print(jobs)
    _print_limiter(limiter)


def _print_processes(seen: list[dict[str, Any]], now: float) -> None:
    if not seen:
        out.print("No process has reported in (none is running).")
        return
    table = Table("process", "host", "pid", "role", "leads", "leased", "last seen")
    for p in seen:
        ago = f"{now - p['last_seen']:.0f} s ago" + ("" if p["alive"] else " (silent)")
        table.add_row(
            p["process"],
            p["host"],
            str(p["pid"]),
            p["role"],
            ", ".join(p["leads"]) or "-",
            str(p["leased_messages"]),
            ago,
        )
    out.print(table)


def _print_limiter(limiter: list[dict[str, Any]]) -> None:
    if not limiter:
        out.print("Shared rate limits: none (SQLite keeps each process's buckets in memory).")
        return
    table = Table("connection", "rate/s", "burst", "tokens", "paused until")
    for bucket in limiter:
        paused = bucket["paused_until"]
        table.add_row(
            bucket["connection_id"],
            f"{bucket['rate']:g}",
            f"{bucket['burst']:g}",
            f"{bucket['tokens']:.1f}",
            when(paused) if paused > time.time() else "-",
        )
    out.print(table)
