"""py-spy on one `smsdesk serve` under bench/vs_kannel.py's load, summarised by hot-path stage.

Starts smsdesk as vs_kannel.py does (simulator with report delay 0, SQLite or PostgreSQL), warms
up, then records the server with py-spy from the first of N requests until the N-th delivery
report is applied, and prints where the samples went: by stage of the hot path (accept,
dispatcher, reports, logging, metrics, live events, ...), by function (own time) and through
smsdesk's own functions (inclusive time).

    python bench/profile_serve.py                        # N=10,000, C=128, SQLite
    python bench/profile_serve.py --gil -o /tmp/serve.txt
    python bench/profile_serve.py --gil --stored 1000000   # with 1,000,000 messages kept
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lean_client import LeanClient
from _profile import PySpy, summarise
from _vs_systems import cpu_seconds, running_smsdesk, wait_for_reports, warm_up

# First match wins, checked from the innermost frame outwards: a sample belongs to the
# innermost stage it passes through, so logging inside the dispatcher counts as logging.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("logging", ("logging/", "structlog/", "smsdesk/logs", "smsdesk/log_")),
    ("metrics", ("prometheus_client/", "smsdesk/metrics", "smsdesk/web/ops")),
    ("live events", ("smsdesk/live/", "smsdesk/store/live")),
    ("phone", ("phonenumbers/", "smsdesk/domain/phone")),
    ("writer / group commit", ("smsdesk/store/writer",)),
    ("dispatcher", ("smsdesk/outbox/dispatcher", "smsdesk/outbox/outcomes", "smsdesk/outbox/pool")),
    ("simulator (provider)", ("smsdesk/providers/simulator", "smsdesk/testing/")),
    ("reports (callback → apply)", ("smsdesk/web/webhooks/", "smsdesk/store/reports")),
    ("accept (validate, route)", ("smsdesk/outbox/accept", "smsdesk/outbox/routing")),
    ("accept (API endpoint)", ("smsdesk/web/api/",)),
]


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in STAGES:
            if any(n in frame for n in needles):
                return name
    for frame in reversed(frames):
        for lib in ("uvicorn/", "starlette/", "fastapi/", "pydantic", "h11/", "httptools"):
            if lib in frame:
                return "HTTP server / framework (outside our code)"
        if "httpx/" in frame or "httpcore/" in frame:
            return "HTTP client (outside our code)"
        if "sqlalchemy/" in frame:
            return "SQL (outside our code)"
    return "other (event loop, idle threads, ...)"


def by_stage(path: Path) -> list[str]:
    stages: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        total += int(count_text)
        stages[stage_of(stack.split(";"))] += int(count_text)
    return ["  by stage (innermost stage on the stack):"] + [
        f"    {100 * n / max(total, 1):5.1f}%  {name}" for name, n in stages.most_common()
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("-c", type=int, default=128)
    parser.add_argument("-o", "--output", type=Path, default=Path("/tmp/serve-profile.txt"))
    parser.add_argument("--gil", action="store_true", help="sample only the thread holding the GIL")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument(
        "--stored", type=int, default=0, help="finished messages in the database before serve"
    )
    opts = parser.parse_args()
    with (
        asyncio.Runner() as runner,
        running_smsdesk(
            postgres=None, processes=None, log_level=opts.log_level, stored=opts.stored
        ) as system,
    ):
        client = LeanClient(system.host, system.port, opts.c)
        try:
            baseline = warm_up(runner, client, system, opts.c)
            requests = system.requests(opts.c, opts.n)
            cpu = cpu_seconds(system.pid)
            spy = PySpy(system.pid, opts.output, gil_only=opts.gil)
            result = runner.run(client.run(requests))
            ok = sum(n for status, n in result.statuses.items() if 200 <= status < 300)
            wait_for_reports(system, baseline + ok, timeout=max(120, opts.n / 20))
            spy.stop()
            used = cpu_seconds(system.pid) - cpu
        finally:
            client.close()
    print(f"  {ok} accepted; serve CPU {1000 * used / opts.n:.3f} ms per message (with py-spy)")
    print("\n".join(by_stage(opts.output)))
    print("\n".join(summarise(opts.output, top=opts.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
