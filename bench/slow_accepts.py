"""When the slowest accepts of vs_kannel.py's load started: spread out, or together.

Starts smsdesk as vs_kannel.py does (simulator with report delay 0, SQLite), sends N
single-message requests over C connections after a warm-up, and keeps each request's start
time with its latency. Prints the latency percentiles, then groups the requests at or above
the 99th percentile by start time (a gap of more than 20 ms starts a new group). Few groups
of many requests mean the tail is set by moments in which every request in flight waited;
many groups of one or two, by requests that were slow on their own.

    python bench/slow_accepts.py                  # N=10,000, C=128, 3 runs
    python bench/slow_accepts.py -c 256 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lean_client import LeanClient, percentile
from _vs_systems import running_smsdesk, warm_up

# Requests at or above p99 whose start times are this close belong to one group.
GROUP_GAP = 0.020


async def timed_load(client: LeanClient, requests: list[bytes]) -> list[tuple[float, float]]:
    """(start, latency) in seconds of every request, starts counted from the first."""
    pending = iter(range(len(requests)))
    timed: list[tuple[float, float]] = []
    began = time.perf_counter()

    async def worker(slot: int) -> None:
        connection = client.connections[slot]
        for index in pending:
            started = time.perf_counter()
            await connection.send(requests[index])
            timed.append((started - began, time.perf_counter() - started))

    await asyncio.gather(*(worker(slot) for slot in range(len(client.connections))))
    return timed


def groups(timed: list[tuple[float, float]], floor: float) -> list[tuple[float, int, float]]:
    """(first start, requests, longest latency) of each group of requests at or above
    `floor`."""
    found: list[list[float]] = []
    last_start = -1.0
    for start, latency in sorted(t for t in timed if t[1] >= floor):
        if found and start - last_start <= GROUP_GAP:
            found[-1][1] += 1
            found[-1][2] = max(found[-1][2], latency)
        else:
            found.append([start, 1, latency])
        last_start = start
    return [(first, int(count), longest) for first, count, longest in found]


def one_run(n: int, c: int) -> None:
    with (
        asyncio.Runner() as runner,
        running_smsdesk(postgres=None, processes=None, log_level="INFO") as system,
    ):
        client = LeanClient(system.host, system.port, c)
        try:
            warm_up(runner, client, system, c)
            timed = runner.run(timed_load(client, system.requests(c, n)))
        finally:
            client.close()
    latencies = [latency for _, latency in timed]
    at = {share: 1000 * percentile(latencies, share) for share in (0.5, 0.9, 0.95, 0.99, 0.999)}
    seconds = max(start + latency for start, latency in timed)
    print(
        f"{len(timed) / seconds:,.0f} accepted/s; latency p50 {at[0.5]:.1f}, p90 {at[0.9]:.1f}, "
        f"p95 {at[0.95]:.1f}, p99 {at[0.99]:.1f}, p99.9 {at[0.999]:.1f}, "
        f"max {1000 * max(latencies):.1f} ms"
    )
    found = groups(timed, at[0.99] / 1000)
    slow = sum(count for _, count, _ in found)
    print(f"  {slow} requests at or above p99, in {len(found)} group(s):")
    for first, count, longest in found[:10]:
        print(
            f"    started {1000 * first:7.1f} ms into the load: {count:4d}, "
            f"longest {1000 * longest:.1f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("-c", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args()
    for run in range(1, opts.runs + 1):
        print(f"run {run}/{opts.runs}, N={opts.n:,}, C={opts.c}: ", end="", flush=True)
        one_run(opts.n, opts.c)
    return 0


if __name__ == "__main__":
    sys.exit(main())
