"""`smsdesk serve` killed with SIGKILL at random moments while clients keep sending (SQLite).

Clients send each message with its own Idempotency-Key and retry until they get an answer, as
a careful API user would. At the end every message a client was told about exists once, was
handed to the provider once, and is delivered.
"""

from __future__ import annotations

import random
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import httpx

from tests.support.processes import Processes, smsdesk_env, wait_until

MESSAGES = 600
CLIENTS = 8
CRASHES = 3
SETTINGS = {
    "module_settings": {"simulator": {"report_delay": 0.05, "report_retry": 1.0}},
}


class Clients:
    """Threads that each send their share of the messages, retrying through crashes."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}
        self.accepted: dict[str, str] = {}  # idempotency key -> message id
        self.retries = 0
        self.lock = threading.Lock()
        self.up = threading.Event()  # cleared while the server is down
        self.up.set()

    def send(self, number: int) -> None:
        idem = f"crash-test-{number}"
        body = {"to": f"+3162{number:07d}", "text": f"Message {number}"}
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while True:
                try:
                    response = client.post(
                        "/api/v1/messages",
                        json=body,
                        headers={**self.headers, "Idempotency-Key": idem},
                    )
                except httpx.TransportError:
                    with self.lock:
                        self.retries += 1
                    assert self.up.wait(60), "smsdesk did not come back"
                    continue  # the answer was lost: the same Idempotency-Key makes this safe
                assert response.status_code == 201, response.text
                with self.lock:
                    assert idem not in self.accepted
                    self.accepted[idem] = response.json()["id"]
                return

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)


def reached(clients: Clients, count: int) -> bool:
    return clients.count() >= count


def ledger(data_dir: Path) -> dict[str, tuple[str, int]]:
    conn = sqlite3.connect(f"file:{data_dir / 'simulator.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT reference, provider_id, attempts FROM sends").fetchall()
    finally:
        conn.close()
    return {ref: (provider_id, attempts) for ref, provider_id, attempts in rows}


def test_accepted_messages_survive_repeated_sigkill(processes: Processes, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = smsdesk_env(data_dir=data_dir, lease_seconds="2", poll_interval="0.05")
    server = processes.server(env).wait_ready()
    key = server.first_key()
    assert key is not None, server.output()
    env["SMSDESK_PORT"] = str(server.port)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as admin:
        assert admin.put("/api/v1/settings", json=SETTINGS).status_code == 200

    clients = Clients(server.url, key)
    rng = random.Random(20261125)
    kill_points = sorted(rng.sample(range(50, MESSAGES - 50), CRASHES))
    with ThreadPoolExecutor(CLIENTS) as pool:
        sending = [pool.submit(clients.send, n) for n in range(MESSAGES)]
        for point in kill_points:
            wait_until(partial(reached, clients, point), f"{point} accepted", timeout=60)
            clients.up.clear()
            server.kill()
            server = processes.server(env).wait_ready()
            clients.up.set()
        for future in sending:
            future.result(timeout=120)

    accepted = clients.accepted
    assert len(accepted) == MESSAGES and len(set(accepted.values())) == MESSAGES
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as admin:

        def statuses() -> dict[str, str] | None:
            found: dict[str, str] = {}
            cursor: str | None = None
            while True:
                params: dict[str, str | int] = {"limit": 1000}
                if cursor:
                    params["cursor"] = cursor
                page = admin.get("/api/v1/messages", params=params).json()
                found.update({m["id"]: m["status"] for m in page["messages"]})
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            return found if set(found.values()) == {"delivered"} else None

        final = wait_until(statuses, "every message to be delivered", timeout=60, interval=0.2)
    assert sorted(final) == sorted(accepted.values()), "lost or extra messages"
    assert server.stop() == 0, server.output()
    sends = ledger(data_dir)
    assert sorted(sends) == sorted(accepted.values()), "the provider did not get each once"
    resubmitted = sum(1 for _, attempts in sends.values() if attempts > 1)
    print(
        f"\n{MESSAGES} messages, {CRASHES} SIGKILLs at {kill_points}, {clients.retries} client "
        f"retries, {resubmitted} re-submitted to the provider after a crash (accepted once)"
    )
