"""How fast the requests overviews answer with 10,000 requests: every view of GET /requests
(the page with its five counts and unread marks) and of GET /api/v1/requests?view=…

Usage: python bench/request_views.py [--requests 10000] [--database-url postgresql://…]

Fills a fresh database (SQLite in a temporary directory unless a URL is given) with requests
spread over 40 agents and 8 groups, a quarter unassigned, with customers, numbers and read
marks, then asks each page `--rounds` times in-process (httpx over ASGI, so the figure is the
server's own time plus a little client cost) and prints the median and the slowest, in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from smsdesk.domain.ids import new_id
from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store.tables import (
    customer_numbers,
    customers,
    group_members,
    groups,
    request_reads,
    requests,
)
from smsdesk.web.app import create_app

PASSWORD = "correct horse battery staple"
AGENTS = 40
GROUPS = 8


def fill(service: Service, count: int) -> None:
    now = time.time()
    rng = random.Random(7)
    users = [
        service.users.create(f"agent{n}", PASSWORD, "agent", "en", now).id for n in range(AGENTS)
    ]
    group_ids = [new_id() for _ in range(GROUPS)]
    with service.engine.begin() as conn:
        conn.execute(
            groups.insert(),
            [
                {"id": g, "name": f"Group {n}", "created_at": now, "updated_at": now}
                for n, g in enumerate(group_ids)
            ],
        )
        conn.execute(
            group_members.insert(),
            [{"group_id": group_ids[n % GROUPS], "user_id": u} for n, u in enumerate(users)],
        )
        rows, people, numbers, reads = [], [], [], []
        for n in range(count):
            customer = new_id()
            people.append(
                {
                    "id": customer,
                    "name": f"Customer {n}",
                    "language": "en",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            numbers.append({"number": f"+316{n:08d}", "customer_id": customer})
            owner = rng.choice(users) if rng.random() > 0.25 else None
            at = now - rng.random() * 86400 * 30
            rows.append(
                {
                    "id": new_id(),
                    "title": f"Question {n}",
                    "status": rng.choice(("open", "open", "pending", "closed", "closed")),
                    "category": "SMS",
                    "priority": "normal",
                    "language": "en",
                    "customer_id": customer,
                    "session_key": new_id(),
                    "created_at": at,
                    "updated_at": at,
                    "last_activity_at": at + rng.random() * 3600,
                    "last_customer_message_at": at,
                    "owner_id": owner,
                    "group_id": rng.choice(group_ids) if rng.random() > 0.1 else None,
                    "out_of_hours": False,
                }
            )
            if owner is not None and rng.random() > 0.5:
                reads.append({"request_id": rows[-1]["id"], "user_id": owner, "seen_at": at})
        conn.execute(customers.insert(), people)
        conn.execute(customer_numbers.insert(), numbers)
        conn.execute(requests.insert(), rows)
        conn.execute(request_reads.insert(), reads)


async def measure(service: Service, rounds: int) -> None:
    app = create_app(service, manage_service=False)
    _, key = service.keys.create("bench", "admin")
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        login = await client.get("/login")
        token = login.text.split('name="csrf_token" value="')[1].split('"')[0]
        await client.post(
            "/login", data={"csrf_token": token, "username": "agent1", "password": PASSWORD}
        )
        paths = [f"/requests?view={v}" for v in ("mine", "unassigned", "my_groups", "waiting")]
        paths += ["/requests", "/requests?view=all&status=all"]
        api = [f"/api/v1/requests?view={v}&user=agent1" for v in ("mine", "waiting", "all")]
        for path in paths + api:
            headers = {"Authorization": f"Bearer {key}"} if path.startswith("/api") else {}
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                answer = await client.get(path, headers=headers)
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, answer.text[:200]
            print(f"{path:45} median {statistics.median(times):6.1f} ms   max {max(times):6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        service = Service(AppConfig(data_dir=Path(tmp), database_url=args.database_url))
        service.upgrade()
        started = time.perf_counter()
        fill(service, args.requests)
        print(f"{args.requests} requests stored in {time.perf_counter() - started:.1f} s")
        asyncio.run(measure(service, args.rounds))
        service.close()


if __name__ == "__main__":
    main()
