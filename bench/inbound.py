"""Inbound SMS through a real `smsdesk serve`: from the provider's callback to a request.

N inbound SMS (default 10,000) are posted to the Intelecom inbound callback the way the
gateway sends them (JSON batches of --batch messages, --clients at a time). A share of them
(--duplicates, default 5%) are repeats of earlier ones (same provider message id), a share
(--unrecognised, default 10%) lack the SMS endpoint code, and senders repeat so that most
SMS join an existing request. The clock runs from the first POST until no inbound SMS is
pending any more.

Every run then checks, straight in the database, that:
  - each distinct SMS is stored exactly once and none is left pending (no loss);
  - recognised ones became requests, unrecognised ones are in the unrecognised list;
  - each sender has exactly one request (no duplicate request).

    python bench/inbound.py                 # 10,000 SMS, SQLite, 3 runs; median printed last
    python bench/inbound.py --count 2000 --repeat 1
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import Server, running_server

TARGET_PER_S = 2000.0


def plan(count: int, duplicates: float, unrecognised: float, senders: int) -> list[dict[str, Any]]:
    """The SMS to post, in order, duplicates included (as repeats of earlier items)."""
    rng = random.Random(7)
    items: list[dict[str, Any]] = []
    originals = int(count * (1 - duplicates))
    for index in range(originals):
        sender = f"+4791{rng.randrange(senders):06d}"
        recognised = rng.random() >= unrecognised
        text = f"HELP order {index}" if recognised else f"wrong number {index}"
        items.append(
            {
                "messageid": f"mo-{index}",
                "originator": sender,
                "sno": "2030",
                "content": text,
                "type": 1,
            }
        )
    for _ in range(count - originals):
        items.insert(rng.randrange(len(items) + 1), dict(rng.choice(items)))
    return items


async def post_all(
    url: str, items: list[dict[str, Any]], batch: int, clients: int
) -> tuple[float, int]:
    """POST every batch (`clients` at a time); (seconds, failed requests)."""
    chunks = [items[i : i + batch] for i in range(0, len(items), batch)]
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for chunk in chunks:
        queue.put_nowait(chunk)
    failures = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        while not queue.empty():
            chunk = queue.get_nowait()
            response = await client.post(
                url,
                content=orjson.dumps({"mo": chunk}),
                headers={"content-type": "application/json"},
            )
            if response.status_code != 200:
                failures += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    return time.perf_counter() - started, failures


def counts(server: Server) -> dict[str, int]:
    engine = server.engine()
    try:
        with engine.connect() as conn:
            states = {
                state: count
                for state, count in conn.execute(
                    sa.text("select state, count(*) from inbound_messages group by state")
                )
            }
            requests = conn.execute(sa.text("select count(*) from requests")).scalar_one()
            senders_with_requests = conn.execute(
                sa.text("select count(distinct customer_id) from requests")
            ).scalar_one()
    finally:
        engine.dispose()
    return {**states, "requests": requests, "customers_with_requests": senders_with_requests}


def configure(server: Server) -> str:
    base = server.base_urls[0]
    headers = {"Authorization": f"Bearer {server.api_key}"}
    response = httpx.put(
        f"{base}/api/v1/settings",
        json={"inbound": {"sms_endpoint": "HELP"}, "default_country_code": "+47"},
        headers=headers,
    )
    response.raise_for_status()
    callbacks = httpx.get(f"{base}/api/v1/modules/intelecom/callbacks", headers=headers)
    callbacks.raise_for_status()
    return str(callbacks.json()["inbound"])


def run_once(args: argparse.Namespace) -> float:
    items = plan(args.count, args.duplicates, args.unrecognised, args.senders)
    distinct = {item["messageid"]: item for item in items}
    recognised = sum(1 for item in distinct.values() if item["content"].startswith("HELP"))
    senders = {
        item["originator"] for item in distinct.values() if item["content"].startswith("HELP")
    }
    with running_server(dispatcher=True) as server:
        url = configure(server)
        started = time.perf_counter()
        posted, failures = asyncio.run(post_all(url, items, args.batch, args.clients))
        deadline = time.monotonic() + 600
        while True:
            found = counts(server)
            if not found.get("pending") or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    stored = sum(v for k, v in found.items() if k not in ("requests", "customers_with_requests"))
    problems = []
    if failures:
        problems.append(f"{failures} POSTs failed")
    if stored != len(distinct):
        problems.append(f"stored {stored}, expected {len(distinct)}")
    if found.get("pending"):
        problems.append(f"{found['pending']} still pending")
    if found.get("request", 0) != recognised:
        problems.append(f"{found.get('request', 0)} became requests, expected {recognised}")
    if found.get("unrecognised", 0) != len(distinct) - recognised:
        problems.append("unrecognised count differs")
    if found["requests"] != len(senders) or found["customers_with_requests"] != len(senders):
        problems.append(f"{found['requests']} requests for {len(senders)} senders")
    rate = len(items) / elapsed
    print(
        f"  {len(items)} inbound SMS ({len(items) - len(distinct)} repeats, "
        f"{len(distinct) - recognised} unrecognised) from {len(senders)} senders: "
        f"posted in {posted:.2f} s, all processed in {elapsed:.2f} s = {rate:,.0f} SMS/s; "
        f"{found['requests']} requests"
        + (f"  PROBLEMS: {'; '.join(problems)}" if problems else "  (checks passed)")
    )
    if problems:
        raise SystemExit(1)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--duplicates", type=float, default=0.05)
    parser.add_argument("--unrecognised", type=float, default=0.10)
    parser.add_argument("--senders", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=100, help="SMS per callback POST")
    parser.add_argument("--clients", type=int, default=4, help="concurrent POSTs")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rates = [run_once(args) for _ in range(args.repeat)]
    median = statistics.median(rates)
    verdict = "meets" if median >= TARGET_PER_S else "MISSES"
    print(f"median: {median:,.0f} inbound SMS/s ({verdict} the target of {TARGET_PER_S:,.0f}/s)")


if __name__ == "__main__":
    main()
