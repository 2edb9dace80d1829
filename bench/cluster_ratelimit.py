"""A connection's rate limit across a cluster: 1, 3 and 5 workers sharing one PostgreSQL.

`smsdesk serve` runs without a dispatcher (it takes the API requests), and N `smsdesk worker`
processes send through one Kannel connection limited to `--rate` messages per second. The
provider is a recording stand-in for Kannel's smsbox (`tests/support/kannel_standin.py`)
answering "0: Accepted for delivery" after 20-100 ms and sending delivery reports to `serve`;
the rate is measured there, from the times the requests arrived. A backlog larger than the
run is queued first. Each run has a fresh database. Printed per N and run, and as medians
over the runs:

  rate      messages per second that reached the provider over `--seconds` (after a warm-up)
  max 1 s   the most messages that arrived within any 1-second window of that time
  ratio     rate / limit, and max 1 s / limit

The limit holds when the rate is within 10 % of the limit (and not below it by more) and no
1-second window carries more than twice the limit.

    python bench/cluster_ratelimit.py                      # 1, 3, 5 workers, 3 runs of 30 s
    python bench/cluster_ratelimit.py --workers 3 --runs 1
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import os
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from _server import (
    Server,
    database,
    running_server,
    scratch_postgres_database,
    smsdesk_command,
)
from tests.support.kannel_standin import KannelStandIn

WARM_UP = 3.0  # seconds after the first message reached the provider, not measured


def configure(server: Server, provider: KannelStandIn, rate: float) -> None:
    """Kannel as the default connection, limited to `rate`, and a backlog bigger than the run."""
    with httpx.Client(
        base_url=server.base_urls[0],
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=60,
    ) as client:
        answer = client.put(
            "/api/v1/settings",
            json={
                "module": "kannel",
                "sender": "Smsdesk",
                "module_settings": {"kannel": provider.module_settings()},
                "limits": {"kannel": {"rate_limit": rate, "concurrency": 4}},
            },
        )
        if answer.status_code >= 300:
            raise RuntimeError(f"settings: {answer.status_code} {answer.text}")


def queue(server: Server, count: int) -> None:
    with httpx.Client(
        base_url=server.base_urls[0],
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=120,
    ) as client:
        for start in range(0, count, 1000):
            numbers = [f"+3161{n:07d}" for n in range(start, min(count, start + 1000))]
            answer = client.post(
                "/api/v1/messages/batch", json={"to": numbers, "text": "Rate limit bench"}
            )
            if answer.status_code >= 300:
                raise RuntimeError(f"batch: {answer.status_code} {answer.text[:300]}")


def start_workers(server: Server, count: int) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "SMSDESK_DATA_DIR": str(server.data_dir),
        "SMSDESK_DATABASE_URL": server.database_url,
        "SMSDESK_PUBLIC_URL": server.base_urls[0],
        "SMSDESK_LOG_LEVEL": "WARNING",
    }
    workers = []
    for index in range(count):
        log = (server.data_dir / f"worker-{index}.log").open("wb")
        workers.append(
            subprocess.Popen(
                [*smsdesk_command(), "worker"],
                env=env | {"SMSDESK_WORKER_ID": f"worker-{index}"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(2)  # SIGINT: finish the sends under way
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def figures(arrivals: list[float], start: float, seconds: float, rate: float) -> dict[str, float]:
    window = sorted(t for t in arrivals if start <= t < start + seconds)
    busiest = max(
        (bisect.bisect_left(window, t + 1.0) - i for i, t in enumerate(window)), default=0
    )
    measured = len(window) / seconds
    return {
        "rate": measured,
        "max_1s": float(busiest),
        "ratio": measured / rate,
        "max_ratio": busiest / rate,
    }


def one_run(admin_url: str, provider: KannelStandIn, workers: int, opts: Any) -> dict[str, float]:
    with ExitStack() as stack:
        url = stack.enter_context(scratch_postgres_database(admin_url))
        server = stack.enter_context(running_server(dispatcher=False, database_url=url))
        configure(server, provider, opts.rate)
        queue(server, int(opts.rate * (opts.seconds + WARM_UP) * 1.5) + 100)
        already = provider.count()
        running = start_workers(server, workers)
        stack.callback(stop_workers, running)
        deadline = time.monotonic() + 120
        while provider.count() == already:
            if time.monotonic() > deadline or any(w.poll() is not None for w in running):
                logs = [p.read_text()[-2000:] for p in server.data_dir.glob("worker-*.log")]
                raise RuntimeError("no message reached the provider:\n" + "\n".join(logs))
            time.sleep(0.1)
        arrived = [r.at for r in provider.received()[already:]]
        start = min(arrived) + WARM_UP
        while time.time() < start + opts.seconds + 0.5:
            time.sleep(0.2)
        arrived = [r.at for r in provider.received()[already:]]
        if opts.gaps:
            ordered = sorted(arrived)
            gaps = sorted(
                (round(b - a, 3), round(a - ordered[0], 1)) for a, b in itertools.pairwise(ordered)
            )
            print(f"    longest gaps (s, at s): {gaps[-8:]}", flush=True)
        return figures(arrived, start, opts.seconds, opts.rate)


def describe(f: dict[str, float]) -> str:
    return (
        f"rate {f['rate']:.2f}/s ({f['ratio']:.3f}x), "
        f"max 1 s {f['max_1s']:.0f} ({f['max_ratio']:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0, help="the connection's limit")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured per run")
    parser.add_argument("--gaps", action="store_true", help="print the longest pauses")
    opts = parser.parse_args()
    with ExitStack() as stack:
        provider = KannelStandIn(round_trip=(0.02, 0.1)).start()
        stack.callback(provider.stop)
        admin_url = stack.enter_context(database("postgres"))
        assert admin_url is not None
        print(
            f"# PostgreSQL, Kannel connection limited to {opts.rate:.0f}/s, concurrency 4; "
            f"provider answers in 20-100 ms; {opts.seconds:.0f} s measured per run",
            flush=True,
        )
        for workers in opts.workers:
            runs = []
            for number in range(opts.runs):
                result = one_run(admin_url, provider, workers, opts)
                runs.append(result)
                print(f"  {workers} workers, run {number + 1}: {describe(result)}", flush=True)
            median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            within = 0.9 <= median["ratio"] <= 1.1 and median["max_ratio"] <= 2.0
            print(
                f"  {workers} workers, MEDIAN of {len(runs)}: {describe(median)}"
                f"{'' if within else '  OUTSIDE THE LIMIT'}",
                flush=True,
            )


if __name__ == "__main__":
    main()
