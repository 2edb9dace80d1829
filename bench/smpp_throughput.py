"""SMPP end to end: N messages through a real `smsdesk serve` to an SMSC on loopback, with receipts.

The SMSC is smpp34's server (tests.support.smsc) in this process; it answers every submit_sm
and sends a delivery receipt for it. The figure is messages per second from the first API call
until every message is *delivered* (median of the runs), and the send rate alone.

    python bench/smpp_throughput.py --messages 5000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from _server import Server, running_server
from tests.support.smsc import TestSmsc

BATCH = 1000
FINAL = ("delivered", "undelivered", "failed", "expired")


def configure(client: httpx.Client, smsc: TestSmsc, window: int) -> None:
    saved = client.put(
        "/api/v1/settings",
        json={
            "module": "smpp",
            "sender": "Smsdesk",
            "module_settings": {
                "smpp": {
                    "host": "127.0.0.1",
                    "port": smsc.port,
                    "system_id": "bench",
                    "password": "bench",
                    "window_size": window,
                }
            },
            "limits": {"smpp": {"rate_limit": 0, "concurrency": 8}},
        },
    )
    saved.raise_for_status()


def warm_up(client: httpx.Client) -> None:
    """One message all the way, so the bind is made before the clock starts."""
    sent = client.post("/api/v1/messages", json={"to": "+46700000000", "text": "warm up"})
    sent.raise_for_status()
    deadline = time.monotonic() + 30
    while client.get(f"/api/v1/messages/{sent.json()['id']}").json()["status"] != "delivered":
        if time.monotonic() > deadline:
            raise RuntimeError("the warm-up message was not delivered within 30 s")
        time.sleep(0.05)


def one_run(messages: int, window: int) -> tuple[float, float]:
    """(end-to-end msg/s, all-sent msg/s) for one fresh service and SMSC."""
    smsc = TestSmsc(receipt_delay=0.05).start()
    try:
        with running_server(dispatcher=True) as server:
            return drive(server, smsc, messages, window)
    finally:
        smsc.stop()


def drive(server: Server, smsc: TestSmsc, messages: int, window: int) -> tuple[float, float]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.base_urls[0], headers=headers, timeout=60) as client:
        configure(client, smsc, window)
        warm_up(client)
        engine = server.engine()
        started = time.perf_counter()
        for first in range(0, messages, BATCH):
            size = min(BATCH, messages - first)
            batch = [
                {"to": f"+4670{(first + i) % 10_000_000:07d}", "text": f"Bench {first + i}"}
                for i in range(size)
            ]
            client.post("/api/v1/messages/batch", json={"messages": batch}).raise_for_status()
        sent_at = None
        deadline = time.monotonic() + max(60, messages / 50)
        while True:
            counts = server.status_counts(engine)
            waiting = counts.get("queued", 0) + counts.get("sending", 0)
            if sent_at is None and waiting == 0:
                sent_at = time.perf_counter() - started
            if sum(counts.get(s, 0) for s in FINAL) >= messages + 1:
                break
            if time.monotonic() > deadline:
                failures = smsc.receipt_failures
                raise RuntimeError(
                    f"not all final in time: {counts}; the SMSC failed to hand over "
                    f"{len(failures)} receipts {failures[:3]}"
                )
            time.sleep(0.1)
        done_at = time.perf_counter() - started
        engine.dispose()
    return messages / done_at, messages / (sent_at or done_at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--window", type=int, default=50, help="outstanding submit_sm")
    opts = parser.parse_args()
    runs = []
    for run in range(opts.repeat):
        end_to_end, sent = one_run(opts.messages, opts.window)
        runs.append((end_to_end, sent))
        print(f"run {run + 1}: {end_to_end:,.0f} msg/s delivered, {sent:,.0f} msg/s sent")
    e2e = statistics.median(r[0] for r in runs)
    sent = statistics.median(r[1] for r in runs)
    target = "met" if e2e >= 1000 else "missed"
    print(
        f"median of {len(runs)}: {e2e:,.0f} msg/s accepted → delivered "
        f"(target 1,000: {target}), {sent:,.0f} msg/s accepted → sent; "
        f"{opts.messages} messages, window {opts.window}"
    )


if __name__ == "__main__":
    main()
