"""The dispatcher's work per message in one process, without HTTP: claim, build, judge, record.

N messages are accepted into a fresh SQLite database as the API stores them; then batches of
--batch are claimed (`claim_sendable`), turned into the provider's messages (`to_outbound`),
answered as a provider that takes every one would answer, judged (`judge`) and recorded
(`record_send_outcomes`), each in its own transaction as the dispatcher runs them. Prints
microseconds per message over the batches, per run and their median: far steadier than
end-to-end figures, so a cut of a few microseconds in these steps can be shown.

    python bench/dispatch_batch.py                    # 20,000 messages, batches of 500, 3 runs
    python bench/dispatch_batch.py -n 50000 --profile # with cProfile's top functions
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import tempfile
import time
from pathlib import Path

from smsdesk.commands.common import make_config, start_service
from smsdesk.outbox.accept import NewMessage, prepare_message
from smsdesk.outbox.dispatcher import claim_sendable, to_outbound
from smsdesk.outbox.outcomes import Scan, judge
from smsdesk.outbox.retry import RetryPolicy
from smsdesk.outbox.targets import by_id, targets
from smsdesk.providers.base import SendResult
from smsdesk.service import Service
from smsdesk.store import messages as repo

OWNER = "bench"


def filled_service(count: int) -> Service:
    service = start_service(make_config(Path(tempfile.mkdtemp()), None))
    config = service.settings.load()
    now = time.time()
    rows = [
        prepare_message(
            NewMessage(to=f"+316{12340000 + i:08d}", text="Your code is 1234"), config, now
        )
        for i in range(count)
    ]
    with service.engine.begin() as conn:
        for start in range(0, count, 1000):
            repo.insert_messages(conn, rows[start : start + 1000], "api")
    return service


def send_all(service: Service, batch: int) -> int:
    """Claim, build, judge and record until nothing is due; the messages handled."""
    config = service.settings.load()
    found = targets(config, ())
    target = found[0]
    scan = Scan(config, by_id(found), {})
    policy, rng = RetryPolicy(), random.Random(1)
    handled = 0
    while True:
        now = time.time()
        with service.engine.begin() as conn:
            rows, _ = claim_sendable(
                conn,
                owner=OWNER,
                limit=batch,
                now=now,
                lease_until=now + 60,
                connection_id=target.connection.id,
                module=target.unassigned,
            )
        if not rows:
            return handled
        outbound = [to_outbound(row, "http://127.0.0.1/webhooks/status") for row in rows]
        results = [
            SendResult(sms.message_id, f"P{rng.getrandbits(48):012x}", raw_code="0")
            for sms in outbound
        ]
        judged = judge(target.connection, rows, results, scan, now, policy, rng)
        attempts = {row.id: row.attempts for row in rows}
        with service.engine.begin() as conn:
            repo.record_send_outcomes(conn, OWNER, judged.outcomes, now, attempts=attempts)
        handled += len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    args = parser.parse_args()
    send_all(filled_service(min(args.messages, 2000)), args.batch)  # compile, caches, imports
    costs = []
    for run in range(1, args.runs + 1):
        service = filled_service(args.messages)
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        handled = send_all(service, args.batch)
        seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        service.engine.dispose()
        if handled != args.messages:
            raise SystemExit(f"handled {handled} of {args.messages} messages")
        costs.append(seconds / handled * 1e6)
        print(f"run {run}/{args.runs}: {costs[-1]:.1f} µs per message")
    print(
        f"{args.messages:,} messages in batches of {args.batch}, median of {args.runs}: "
        f"{statistics.median(costs):.1f} µs per message"
    )


if __name__ == "__main__":
    main()
