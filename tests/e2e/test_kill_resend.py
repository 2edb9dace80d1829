"""Processes killed or frozen while sending through the kannel module: nothing is lost, and a
message goes out twice only when nothing showed that the provider had taken it.

A recording Kannel stand-in answers sendsms after a 20-100 ms round trip and reports each
message delivered through its dlr-url, which names our message id. A message whose report
smsdesk already holds is proof the provider took it: when its dispatcher's lease runs out it
must not be sent again. Only a request in flight at the moment of a kill, with no report back
yet, may go out twice (`bench/kill_test.py` is the long version).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store.tables import message_events, messages
from tests.conftest import database_url
from tests.support.kannel_standin import KannelStandIn
from tests.support.kill_run import (
    KillPlan,
    api_client,
    configure_kannel,
    held_by,
    run_postgres,
    run_sqlite,
)
from tests.support.kill_tally import KillFigures
from tests.support.processes import Processes, Server, Worker, smsdesk_env, wait_until

# A lease longer than two restarts of `serve` back to back (7-8 s each on a busy 2-CPU machine):
# the reports Kannel retries reach the restarted process before the leases of the messages in
# flight run out. With a lease shorter than the time `serve` was down, a message in flight at the
# kill goes out again: the restarted process looks at expired leases before it takes reports.
SQLITE_LEASE = 30.0
POSTGRES_LEASE = 5.0  # `serve` takes the reports throughout; only workers die
SHORT_LEASE = 3.0  # the frozen-worker tests


def check(figures: KillFigures, plan: KillPlan) -> None:
    details = "\n".join(d.describe() for d in figures.duplicates)
    print(f"\n{figures.database}: {figures.summary()}\n{details}")
    assert (figures.lost, figures.not_final) == (0, 0), figures.summary()
    in_flight_at_most = (plan.kills + plan.freezes) * plan.concurrency
    assert figures.doubled <= in_flight_at_most, details
    assert figures.had_evidence == 0, f"sent again although its report was in:\n{details}"


def test_sigkilled_serve_loses_nothing_and_resends_only_calls_in_flight(tmp_path: Path) -> None:
    """SQLite: `serve` SIGKILLed 3 times while sending 200 messages; all are delivered, none
    whose delivery report had come in is sent again."""
    plan = KillPlan(messages=200, kills=3, lease_seconds=SQLITE_LEASE, seed=15, log_level="INFO")
    plan.final_timeout = 90
    with KannelStandIn(seed=15) as standin:
        figures = run_sqlite(standin, plan, tmp_path)
    check(figures, plan)


@pytest.mark.postgres
def test_killed_and_frozen_workers_lose_nothing_and_resend_only_calls_in_flight(
    pg_engine: Engine, tmp_path: Path
) -> None:
    """PostgreSQL: two workers, two SIGKILLed and one frozen past its lease while sending 200
    messages; all are delivered, none whose delivery report had come in is sent again."""
    plan = KillPlan(
        messages=200,
        kills=2,
        freezes=1,
        workers=2,
        lease_seconds=POSTGRES_LEASE,
        seed=15,
        log_level="INFO",
    )
    plan.final_timeout = 90
    with KannelStandIn(seed=15) as standin:
        figures = run_postgres(standin, plan, tmp_path, database_url(pg_engine))
    check(figures, plan)


# -- the frozen worker ---------------------------------------------------------------------------
# PostgreSQL only: on SQLite a worker frozen while it holds the file's write lock (it claims
# every 50 ms) stops every other process with it, so no new owner can take anything over.


class Cluster:
    """`serve --no-dispatcher` for the API and the reports, workers added by name."""

    def __init__(self, engine: Engine, processes: Processes, tmp_path: Path) -> None:
        self.engine = engine
        self.processes = processes
        self.base = {"data_dir": str(tmp_path / "data"), "database_url": database_url(engine)}
        self.server: Server = processes.server(smsdesk_env(**self.base, dispatcher="false"))
        self.server.wait_ready()
        key = self.server.first_key()
        assert key is not None, self.server.output()
        self.client = api_client(self.server, key)

    def worker(self, name: str) -> Worker:
        env = smsdesk_env(
            **self.base,
            public_url=self.server.url,
            worker_id=name,
            lease_seconds=str(SHORT_LEASE),
            poll_interval="0.05",
        )
        return self.processes.worker(env, name).wait_ready()

    def send_one(self) -> str:
        response = self.client.post("/api/v1/messages", json={"to": "+31612345678", "text": "Hi"})
        assert response.status_code == 201, response.text
        message_id: str = response.json()["id"]
        return message_id

    def status(self, message_id: str) -> str:
        with self.engine.connect() as conn:
            query = sa.select(messages.c.status).where(messages.c.id == message_id)
            return str(conn.execute(query).scalar_one())

    def state(self, message_id: str) -> tuple[Any, list[Any]]:
        """The message's row and its whole timeline, to compare before and after."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(messages).where(messages.c.id == message_id)).one()
            timeline = conn.execute(
                sa.select(message_events)
                .where(message_events.c.message_id == message_id)
                .order_by(message_events.c.id)
            ).all()
        return tuple(row), [tuple(line) for line in timeline]


@pytest.fixture
def cluster(pg_engine: Engine, processes: Processes, tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(pg_engine, processes, tmp_path)
    try:
        yield running
    finally:
        running.client.close()


def freeze_with_request_in_flight(cluster: Cluster, standin: KannelStandIn) -> tuple[Worker, str]:
    """w1 claims one message and calls Kannel, which holds the answer; w1 is frozen then."""
    configure_kannel(cluster.client, standin, concurrency=4)
    w1 = cluster.worker("w1")
    standin.hold(1)
    message_id = cluster.send_one()
    wait_until(lambda: standin.held() == 1, "w1's request to reach Kannel")
    assert held_by(cluster.engine, "w1") == {message_id}
    w1.pause()
    return w1, message_id


def report_taken(standin: KannelStandIn, message_id: str, count: int) -> bool:
    reports = [r for r in standin.reports() if r.message_id == message_id]
    return len(reports) == count and all(r.delivered_at is not None for r in reports)


@pytest.mark.postgres
def test_frozen_worker_answered_while_frozen_records_nothing_over_the_new_owner(
    cluster: Cluster,
) -> None:
    """Kannel took w1's message and its report came in while w1 was frozen past its lease:
    the message is settled without a second send, and w1, woken, changes nothing."""
    with KannelStandIn() as standin:
        w1, message_id = freeze_with_request_in_flight(cluster, standin)
        standin.release()  # the answer waits in the frozen worker's socket; the report comes
        wait_until(lambda: report_taken(standin, message_id, 1), "the report stored")
        cluster.worker("w2")
        wait_until(
            lambda: cluster.status(message_id) == "delivered",
            "the new owner to settle the message",
            timeout=SHORT_LEASE + 30,
        )
        settled = cluster.state(message_id)
        w1.resume()
        assert w1.stop() == 0, w1.output()
        assert cluster.state(message_id) == settled
        assert standin.times_received()[message_id] == 1, "sent again despite its report"


@pytest.mark.postgres
def test_frozen_worker_still_waiting_for_kannel_records_nothing_over_the_new_owner(
    cluster: Cluster,
) -> None:
    """w1's request was still in flight, with no trace, when its lease ran out: w2 sends the
    message again and it is delivered; w1, woken and then answered, changes nothing."""
    with KannelStandIn() as standin:
        w1, message_id = freeze_with_request_in_flight(cluster, standin)
        cluster.worker("w2")
        wait_until(
            lambda: cluster.status(message_id) == "delivered",
            "the new owner to send and deliver the message",
            timeout=SHORT_LEASE + 30,
        )
        standin.release()  # now Kannel answers w1's request too, and reports it
        wait_until(lambda: report_taken(standin, message_id, 2), "both reports taken")
        settled = cluster.state(message_id)
        w1.resume()
        assert w1.stop() == 0, w1.output()
        assert cluster.state(message_id) == settled
        assert standin.times_received()[message_id] == 2
