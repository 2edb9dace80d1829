"""Failover while sending: throughput through two connections when the first goes down.

A real `smsdesk serve` (dispatcher and delivery reports in the same process, as users run it)
sends through two CM accounts, each a CM fake on loopback: the default connection and a
reserve, both named by one route. Every round sends `--rate` messages per second for
`--seconds`; a third of the way in the first account's port starts refusing connections, and
two thirds in it comes back. Printed per round and as medians over the rounds:

  before    messages sent per second before the outage (median of the 1-s windows)
  dip       the slowest 1-s window in the five seconds after the outage began
  recovery  seconds from the outage until a window reaches 90 % of `before` again
  reserve   messages the reserve sent
  doubled   messages that reached the two fakes more than once (must be 0)
  missing   messages not sent when the load ended plus a grace period (must be 0)

    python bench/failover.py                       # SQLite, 3 rounds of 30 s at 100/s
    python bench/failover.py --database postgres --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from _clients import make_pool
from _server import Server, database, running_server

from smsdesk.testing.fakes import load_fake
from smsdesk.testing.fakes.base import FailureMode, FakeProvider

GRACE_SECONDS = 30.0


def configure(server: Server, first: FakeProvider, reserve: FakeProvider) -> None:
    """The default connection on the first account, a reserve, and a route naming both."""
    with httpx.Client(
        base_url=server.base_urls[0],
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=30,
    ) as client:
        steps = [
            client.put(
                "/api/v1/settings",
                json={
                    "module": "cm",
                    "sender": "Smsdesk",
                    "module_settings": {"cm": first.module_settings()},
                },
            ),
            client.post(
                "/api/v1/connections",
                json={"name": "reserve", "module": "cm", "settings": reserve.module_settings()},
            ),
            client.post(
                "/api/v1/routes",
                json={
                    "name": "Netherlands",
                    "countries": ["NL"],
                    "connections": ["default", "reserve"],
                },
            ),
        ]
        for answer in steps:
            if answer.status_code >= 300:
                raise RuntimeError(f"{answer.request.url.path}: {answer.status_code} {answer.text}")


async def load(server: Server, rate: float, seconds: float, first: FakeProvider) -> list[str]:
    """Single POSTs at a steady rate; the first account goes down and comes back on the way."""
    pool = make_pool("raw", server.base_urls, server.api_key, 16)
    sessions = [await pool.session() for _ in range(16)]
    ids: list[str] = []
    started = time.monotonic()
    down_at, up_at = started + seconds / 3, started + 2 * seconds / 3
    state = "up"

    async def one(n: int) -> None:
        body = orjson.dumps({"to": f"+3161{n:07d}", "text": f"Failover bench {n}"})
        status, answer = await sessions[n % len(sessions)].request("POST", "/api/v1/messages", body)
        if status != 201:
            raise RuntimeError(f"POST /api/v1/messages: {status} {answer[:200]!r}")
        ids.append(orjson.loads(answer)["id"])

    tasks = []
    n = 0
    try:
        while (now := time.monotonic()) < started + seconds:
            if state == "up" and now >= down_at:
                first.fail_next(FailureMode.REFUSE_CONNECTION)
                state = "down"
            elif state == "down" and now >= up_at:
                first.release_held()
                state = "back"
            due = started + n / rate
            if due > now:
                await asyncio.sleep(due - now)
            tasks.append(asyncio.create_task(one(n)))
            n += 1
        await asyncio.gather(*tasks)
    finally:
        if state == "down":
            first.release_held()
        await pool.close()
    return ids


def sent_per_second(server: Server, since: float) -> tuple[dict[int, int], dict[str, int]]:
    engine = server.engine()
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT sent_at, connection_id FROM messages "
                    "WHERE sent_at IS NOT NULL AND created_at >= :since"
                ),
                {"since": since},
            ).all()
    finally:
        engine.dispose()
    windows = Counter(int(at - since) for at, _ in rows)
    by_connection = Counter(str(connection) for _, connection in rows)
    return dict(windows), dict(by_connection)


def wait_sent(server: Server, ids: list[str]) -> int:
    """Wait (up to the grace period) until every message left the queue; how many did not."""
    engine = server.engine()
    wanted = set(ids)
    deadline = time.monotonic() + GRACE_SECONDS
    try:
        while True:
            with engine.connect() as conn:
                waiting = conn.execute(
                    sa.text("SELECT id FROM messages WHERE status IN ('queued', 'sending')")
                ).scalars()
                left = wanted & set(waiting)
            if not left or time.monotonic() > deadline:
                return len(left)
            time.sleep(0.2)
    finally:
        engine.dispose()


def one_round(
    server: Server, first: FakeProvider, reserve: FakeProvider, opts: Any
) -> dict[str, Any]:
    first.reset()
    reserve.reset()
    since = time.time()
    ids = asyncio.run(load(server, opts.rate, opts.seconds, first))
    missing = wait_sent(server, ids)
    windows, by_connection = sent_per_second(server, since)
    outage = int(opts.seconds / 3)
    before = statistics.median(windows.get(s, 0) for s in range(1, outage))
    dip = min(windows.get(s, 0) for s in range(outage, outage + 5))
    recovery = next(
        (s - outage for s in range(outage, int(opts.seconds)) if windows.get(s, 0) >= 0.9 * before),
        float("nan"),
    )
    references = Counter(sms.reference for fake in (first, reserve) for sms in fake.messages)
    return {
        "before": before,
        "dip": dip,
        "recovery_s": recovery,
        "reserve": by_connection.get("reserve", 0)
        + sum(n for c, n in by_connection.items() if c not in ("default", "reserve", "None")),
        "doubled": sum(1 for count in references.values() if count > 1),
        "missing": missing,
        "sent": sum(by_connection.values()),
    }


def describe(figures: dict[str, Any]) -> str:
    return (
        f"before {figures['before']:.0f}/s, dip {figures['dip']:.0f}/s, "
        f"recovery {figures['recovery_s']:.0f} s, reserve sent {figures['reserve']:.0f}, "
        f"doubled {figures['doubled']:.0f}, missing {figures['missing']:.0f} "
        f"(of {figures['sent']:.0f} sent)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="load per round")
    opts = parser.parse_args()
    fake_class = load_fake("cm")
    with ExitStack() as stack:
        first, reserve = fake_class().start(), fake_class().start()
        stack.callback(first.stop)
        stack.callback(reserve.stop)
        url = stack.enter_context(database(opts.database))
        server = stack.enter_context(running_server(dispatcher=True, database_url=url))
        configure(server, first, reserve)
        print(
            f"# {opts.database}: {opts.rate:.0f} messages/s for {opts.seconds:.0f} s; the first "
            f"account refuses connections from {opts.seconds / 3:.0f} s to "
            f"{2 * opts.seconds / 3:.0f} s",
            flush=True,
        )
        runs = []
        for number in range(opts.rounds):
            figures = one_round(server, first, reserve, opts)
            runs.append(figures)
            print(f"  round {number + 1}: {describe(figures)}", flush=True)
        median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        print(f"  MEDIAN of {len(runs)}: {describe(median)}", flush=True)


if __name__ == "__main__":
    main()
