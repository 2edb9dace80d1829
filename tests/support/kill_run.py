"""Kill tests of the outbox: real `smsdesk` processes killed (and one frozen) while they send
through the kannel module to a recording Kannel stand-in.

SQLite: one `smsdesk serve`, SIGKILLed at random moments and started again each time.
PostgreSQL: `serve --no-dispatcher` (API and delivery reports) and workers, of which random
ones are SIGKILLed and replaced, and one is frozen (SIGSTOP) while it holds claims until every
claim of its has been taken over after its lease ran out, then woken (SIGCONT).

A random moment is "after a random number of requests reached the stand-in since the last
disruption", so every kill falls while messages are being sent. Used by `bench/kill_test.py`
and `tests/e2e/test_kill_resend.py`.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from smsdesk.store.tables import messages
from tests.support.kannel_standin import KannelStandIn
from tests.support.kill_tally import KillFigures, statuses, tally
from tests.support.processes import Processes, Server, Worker, smsdesk_env, wait_until

BATCH = 1000  # the batch endpoint's maximum


@dataclass
class KillPlan:
    """How a run is shaped."""

    messages: int = 2000
    kills: int = 20
    freezes: int = 0
    workers: int = 3  # PostgreSQL only
    lease_seconds: float = 5.0
    concurrency: int = 4  # the module's default
    log_level: str = "WARNING"
    seed: int | None = None
    final_timeout: float = 180.0
    settle_seconds: float = 15.0  # no change for this long, nothing left to do: the end

    def spread(self) -> tuple[int, int]:
        """Requests between disruptions: random in this range, so that they all fall while
        sending (on average 80 % of the messages are sent by the last one)."""
        most = int(1.6 * self.messages / (self.kills + self.freezes + 1))
        return 3, max(4, most)


def api_client(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def configure_kannel(client: httpx.Client, standin: KannelStandIn, concurrency: int) -> None:
    """The kannel module as the one module, pointed at the stand-in, as an admin would."""
    settings = {
        "module": "kannel",
        "sender": "Smsdesk",
        "module_settings": {"kannel": standin.module_settings()},
        "limits": {"kannel": {"rate_limit": 0, "concurrency": concurrency}},
    }
    response = client.put("/api/v1/settings", json=settings)
    assert response.status_code == 200, response.text


def queue_messages(client: httpx.Client, count: int) -> list[str]:
    """POST `count` messages to distinct numbers through the batch endpoint; their ids."""
    ids: list[str] = []
    for first in range(0, count, BATCH):
        size = min(BATCH, count - first)
        numbers = [f"+3161{n:07d}" for n in range(first, first + size)]
        response = client.post(
            "/api/v1/messages/batch", json={"to": numbers, "text": f"Kill test {first}"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["accepted"], body["rejected"]) == (size, 0), body
        ids += [result["message"]["id"] for result in body["results"]]
    return ids


def held_by(engine: Engine, owner: str) -> set[str]:
    """Messages `owner` has claimed and not recorded an outcome for."""
    query = sa.select(messages.c.id).where(
        messages.c.status == "sending", messages.c.lease_owner == owner
    )
    with engine.connect() as conn:
        return {str(i) for i in conn.execute(query).scalars()}


class KillRun:
    """One run: processes, the stand-in, the moments of disruption, the figures at the end."""

    def __init__(
        self, standin: KannelStandIn, plan: KillPlan, log_dir: Path, database_url: str
    ) -> None:
        self.standin = standin
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.processes = Processes(log_dir)
        self.engine = sa.create_engine(database_url, poolclass=NullPool)
        self.database_url = database_url
        self.disruptions: list[float] = []
        self.restarts: list[float] = []  # seconds from a kill until the new process was ready
        self.accepted: list[str] = []

    def settings(self, **extra: str) -> dict[str, str]:
        return smsdesk_env(
            lease_seconds=str(self.plan.lease_seconds),
            poll_interval="0.05",
            log_level=self.plan.log_level,
            **extra,
        )

    def wait_for_sends(self) -> None:
        """Until a random number of further requests reached the stand-in (or all went)."""
        target = self.standin.count() + self.rng.randint(*self.plan.spread())
        wanted = set(self.accepted)

        def reached() -> bool:
            if self.standin.count() >= target:
                return True
            return wanted <= set(self.standin.times_received())

        wait_until(reached, f"{target} requests at the stand-in", timeout=120, interval=0.005)

    def wait_final(self) -> None:
        """Until every accepted message is delivered, or nothing is left to happen: none is
        queued or sending, the stand-in has no report left to deliver, and no status changed
        for `plan.settle_seconds` (then the figures say what is missing)."""
        wanted = set(self.accepted)
        last: dict[str, str] = {}
        changed = time.monotonic()

        def final() -> bool:
            nonlocal last, changed
            found = statuses(self.engine)
            if all(found.get(i) == "delivered" for i in wanted):
                return True
            if found != last:
                last, changed = found, time.monotonic()
                return False
            busy = {"queued", "sending"} & set(found.values())
            quiet = time.monotonic() - changed > self.plan.settle_seconds
            return quiet and not busy and self.standin.reports_pending() == 0

        with contextlib.suppress(TimeoutError):
            wait_until(final, "every message delivered", self.plan.final_timeout, interval=0.2)

    def figures(self, database: str, started: float) -> KillFigures:
        plan = self.plan
        figures = KillFigures(database, plan.messages, plan.kills, plan.freezes)
        figures.seconds = time.monotonic() - started
        figures.restart_seconds = statistics.median(self.restarts) if self.restarts else 0.0
        return tally(figures, self.accepted, self.standin, self.engine, self.disruptions)

    def close(self) -> None:
        self.processes.stop_all()
        self.engine.dispose()


def run_sqlite(standin: KannelStandIn, plan: KillPlan, workdir: Path) -> KillFigures:
    """One `serve` on a SQLite file, SIGKILLed `plan.kills` times while sending."""
    data_dir = workdir / "data"
    run = KillRun(standin, plan, workdir, f"sqlite:///{data_dir / 'smsdesk.sqlite3'}")
    try:
        env = run.settings(data_dir=str(data_dir))
        server = run.processes.server(env).wait_ready()
        key = server.first_key()
        assert key is not None, server.output()
        env["SMSDESK_PORT"] = str(server.port)  # reports keep reaching the restarted one
        with api_client(server, key) as client:
            configure_kannel(client, standin, plan.concurrency)
            started = time.monotonic()
            run.accepted = queue_messages(client, plan.messages)
        for _ in range(plan.kills):
            run.wait_for_sends()
            run.disruptions.append(time.time())
            server.kill()
            server = run.processes.server(env).wait_ready(timeout=60)
            run.restarts.append(time.time() - run.disruptions[-1])
        run.wait_final()
        return run.figures("sqlite", started)
    finally:
        run.close()


class Workers:
    """The workers of a PostgreSQL run, started with increasing ids (w1, w2, ...)."""

    def __init__(self, run: KillRun, base: dict[str, str], public_url: str) -> None:
        self.run = run
        self.base = base
        self.public_url = public_url
        self.started = 0
        self.live: dict[str, Worker] = {}

    def start(self) -> str:
        self.started += 1
        name = f"w{self.started}"
        env = self.run.settings(**self.base, public_url=self.public_url, worker_id=name)
        self.live[name] = self.run.processes.worker(env, name).wait_ready(timeout=60)
        return name

    def pick(self) -> str:
        return self.run.rng.choice(sorted(self.live))

    def kill(self, name: str) -> None:
        self.run.disruptions.append(time.time())
        self.live.pop(name).kill()
        self.start()
        self.run.restarts.append(time.time() - self.run.disruptions[-1])

    def freeze(self, name: str) -> set[str]:
        """SIGSTOP `name` while it holds claims; SIGCONT once others took every one of them
        over after its lease ran out. Returns the messages it held."""
        worker, engine = self.live[name], self.run.engine

        def frozen_holding_claims() -> set[str] | None:
            if not held_by(engine, name):
                return None
            worker.pause()
            if held := held_by(engine, name):
                return held
            worker.resume()
            return None

        held: set[str] = wait_until(frozen_holding_claims, f"{name} to hold claims", timeout=60)
        self.run.disruptions.append(time.time())
        limit = self.run.plan.lease_seconds + 60
        wait_until(lambda: not held_by(engine, name), f"{name}'s claims taken over", limit)
        worker.resume()
        return held


def disruption_order(plan: KillPlan, rng: random.Random) -> list[str]:
    """The kills with the freezes among them (never first, so the run is under way)."""
    order = ["kill"] * plan.kills
    for _ in range(plan.freezes):
        order.insert(rng.randint(1, max(1, len(order))), "freeze")
    return order


def run_postgres(
    standin: KannelStandIn,
    plan: KillPlan,
    workdir: Path,
    database_url: str,
    on_freeze: Callable[[set[str]], Any] | None = None,
) -> KillFigures:
    """`serve --no-dispatcher` and `plan.workers` workers on PostgreSQL; workers are killed and
    replaced, and `plan.freezes` times one is frozen past its lease and woken."""
    run = KillRun(standin, plan, workdir, database_url)
    try:
        base = {"data_dir": str(workdir / "data"), "database_url": database_url}
        server = run.processes.server(run.settings(**base, dispatcher="false")).wait_ready()
        key = server.first_key()
        assert key is not None, server.output()
        workers = Workers(run, base, server.url)
        with api_client(server, key) as client:
            configure_kannel(client, standin, plan.concurrency)
            for _ in range(plan.workers):
                workers.start()
            started = time.monotonic()
            run.accepted = queue_messages(client, plan.messages)
        for step in disruption_order(plan, run.rng):
            run.wait_for_sends()
            if step == "kill":
                workers.kill(workers.pick())
            else:
                held = workers.freeze(workers.pick())
                if on_freeze is not None:
                    on_freeze(held)
        run.wait_final()
        return run.figures("postgres", started)
    finally:
        run.close()


def medians(runs: Sequence[KillFigures]) -> dict[str, float]:
    """The median of each figure over runs."""
    keys = (
        "seconds",
        "restart_seconds",
        "lost",
        "not_final",
        "doubled",
        "extra_sends",
        "had_evidence",
        "no_trace",
    )
    return {key: statistics.median(getattr(run, key) for run in runs) for key in keys}
