"""Kill the leader: another process takes every once-per-cluster job over within 10 s, and no
job ever runs in two processes at once.

`smsdesk serve` and two `smsdesk worker`s share one PostgreSQL database; w1 starts first and
leads every job. Webhook deliveries to a receiver that refuses each first attempt become
retries, which only the leader of `webhook-retries` sends. w1 is killed with SIGKILL; the
others' logs say who took each job and when; the receiver's log shows each retry POSTed once;
the job journal (every process's `job run` lines) shows no two runs of a job overlapping.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.cluster import JOBS
from smsdesk.store.tables import webhook_deliveries
from smsdesk.testing import free_port
from tests.conftest import database_url
from tests.support.processes import Processes, SmsdeskProcess, smsdesk_env, wait_until

pytestmark = pytest.mark.postgres
TAKEOVER_LIMIT = 10.0


class Receiver(BaseHTTPRequestHandler):
    """Another system's endpoint: refuses the first POST of each delivery, takes the rest."""

    log: ClassVar[list[tuple[float, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        delivery = self.headers.get("X-Smsdesk-Delivery", "")
        seen = any(d == delivery for _, d in self.log)
        self.log.append((time.time(), delivery))
        self.send_response(200 if seen else 500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[float, str]]]]:
    log: list[tuple[float, str]] = []
    handler = type("OneReceiver", (Receiver,), {"log": log})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/events", log
    finally:
        server.shutdown()
        server.server_close()


def journal(process: SmsdeskProcess) -> list[dict[str, Any]]:
    """The process's leadership and job-run lines (JSON logs)."""
    found = []
    for line in process.output().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("logger") == "smsdesk.cluster" and "job" in entry:
                found.append(entry)
    return found


def led_since(process: SmsdeskProcess, job: str) -> float | None:
    """When the process last took `job` (None if it does not lead it)."""
    taken = None
    for entry in journal(process):
        if entry["job"] == job and entry["event"] == f"leading {job}":
            taken = entry["at"]
        elif entry["job"] == job and entry["event"] == f"no longer leading {job}":
            taken = None
    return taken


def led_by(processes: tuple[SmsdeskProcess, ...]) -> dict[str, list[Any]] | None:
    """Each job's leaders among `processes` with when they took it; None while one has none."""
    leaders = {
        job: [(p, at) for p in processes if (at := led_since(p, job)) is not None] for job in JOBS
    }
    return leaders if all(leaders.values()) else None


def deliveries(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(webhook_deliveries)).all())


def test_killing_the_leader_hands_each_job_over_within_10_s(
    pg_engine: Engine, processes: Processes, tmp_path: Path, receiver: Any
) -> None:
    """Every job is taken by one survivor within 10 s of the kill; each retry is POSTed once;
    the runs of each job in the journal never overlap between processes."""
    url, received = receiver
    port = free_port()
    base = {
        "data_dir": str(tmp_path / "data"),
        "database_url": database_url(pg_engine),
        "public_url": f"http://127.0.0.1:{port}",  # where the simulator's reports go
    }
    w1 = processes.worker(smsdesk_env(**base, worker_id="w1"), "w1").wait_ready()
    wait_until(lambda: all(led_since(w1, job) for job in JOBS), "w1 to lead every job")
    server = processes.server(smsdesk_env(**base, worker_id="api", port=str(port))).wait_ready()
    w2 = processes.worker(smsdesk_env(**base, worker_id="w2"), "w2").wait_ready()
    key = server.first_key()
    assert key is not None, server.output()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as api:
        health = api.get("/healthz").json()
        assert health["role"] == "both" and health["leads"] == [], health
        settings = {"webhooks": {"allow_private": ["127.0.0.0/8"]}}
        assert api.put("/api/v1/settings", json=settings).status_code == 200
        hook = {"url": url, "events": ["message.status"]}
        assert api.post("/api/v1/webhooks", json=hook).status_code == 201
        numbers = [f"+3161234567{n}" for n in range(3)]
        sent = api.post("/api/v1/messages/batch", json={"to": numbers, "text": "hi"})
        assert sent.status_code == 200, sent.text
        ids = [result["message"]["id"] for result in sent.json()["results"]]
        wait_until(
            lambda: all(
                api.get(f"/api/v1/messages/{i}").json()["status"] == "delivered" for i in ids
            ),
            "the messages to be delivered",
            timeout=30,
            interval=0.1,
        )
        # Every delivery has had its (refused) first attempt: only retries are left.
        wait_until(
            lambda: all(r.attempts >= 1 and r.status == "pending" for r in deliveries(pg_engine)),
            "every delivery's first attempt",
            timeout=30,
        )
        killed_at = time.time()
        w1.kill()
        survivors = (server, w2)
        taken = wait_until(lambda: led_by(survivors), "the survivors to take every job", 15)
        for job, holders in taken.items():
            assert len(holders) == 1, (job, holders)
            (_, at) = holders[0]
            assert 0 <= at - killed_at < TAKEOVER_LIMIT, (job, at - killed_at)
        wait_until(
            lambda: all(r.status == "delivered" for r in deliveries(pg_engine)),
            "every retry to be delivered",
            timeout=60,
            interval=0.2,
        )
        assert api.get("/healthz").json()["leads"] == [
            job for job in JOBS if taken[job][0][0] is server
        ]
    check_receiver(received)
    check_journal({"w1": w1, "api": server, "w2": w2}, killed_at, time.time())


def check_receiver(received: list[tuple[float, str]]) -> None:
    """Each delivery was POSTed twice: its refused first attempt and one retry, never more."""
    per_delivery: dict[str, int] = {}
    for _, delivery in received:
        per_delivery[delivery] = per_delivery.get(delivery, 0) + 1
    assert per_delivery and set(per_delivery.values()) == {2}, per_delivery


def check_journal(by_owner: dict[str, SmsdeskProcess], killed_at: float, now: float) -> None:
    """Per job: the leaders' terms do not overlap, and each run lies within its owner's term."""
    terms: dict[str, list[tuple[float, float, str]]] = {job: [] for job in JOBS}
    runs: dict[str, list[tuple[float, float, str]]] = {job: [] for job in JOBS}
    for owner, process in by_owner.items():
        end_of_process = killed_at if owner == "w1" else now
        open_terms: dict[str, float] = {}
        for entry in journal(process):
            job, event = entry["job"], entry["event"]
            if event == f"leading {job}":
                open_terms[job] = entry["at"]
            elif event == f"no longer leading {job}":
                terms[job].append((open_terms.pop(job), entry["at"], owner))
            elif event == "job run":
                runs[job].append((entry["started"], entry["ended"], owner))
        for job, since in open_terms.items():
            terms[job].append((since, end_of_process, owner))
    for job in JOBS:
        ordered = sorted(terms[job])
        for (_, first_end, _), (second_start, _, _) in itertools.pairwise(ordered):
            assert first_end <= second_start, (job, ordered)
        for started, ended, owner in runs[job]:
            assert any(
                o == owner and start <= started and ended <= end for start, end, o in terms[job]
            ), (job, owner, started, ended, terms[job])
    assert {owner for *_, owner in runs["webhook-retries"]} & {"api", "w2"}
    assert len(runs["reconcile"]) >= 2  # w1's first run, and the new leader's on taking over
