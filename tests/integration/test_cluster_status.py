"""What operators see of the cluster: /healthz, /metrics and `smsdesk cluster status` name each
process's role, the jobs it leads and the messages it holds leased."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import Engine

from smsdesk.cluster import JOBS
from tests.conftest import database_url
from tests.support.cli import cli_runner, ok
from tests.support.harness import running_service


async def test_a_running_worker_reports_its_role_and_jobs(engine: Engine, tmp_path: Path) -> None:
    """A process with a dispatcher leads every job when it is alone; /healthz and /metrics say
    so, and `cluster status` lists it (from its heartbeat) as each job's leader."""
    url = database_url(engine)
    async with running_service(tmp_path / "data", url) as h:
        service = h.service
        leadership, heartbeat = service.leadership, service.heartbeat
        assert heartbeat is not None and leadership is not None
        await h.wait_until(lambda: leadership.held == JOBS, "every job to be led")
        await heartbeat.beat_once()
        health = (await h.client.get("/healthz")).json()
        assert health["role"] == "worker"  # started by the harness, which names the dispatcher
        assert health["leads"] == list(JOBS)
        assert health["leased_messages"] == 0
        assert isinstance(health["limiter"], list)
        metrics = (await h.client.get("/metrics", headers=h.headers)).text
        assert 'smsdesk_job_leader{job="reconcile"} 1.0' in metrics
        assert 'smsdesk_process_role{role="worker"} 1.0' in metrics

        run = cli_runner(tmp_path / "data", SMSDESK_DATABASE_URL=url)
        status = json.loads(ok(run, "cluster", "status", "--json"))
        (process,) = status["processes"]
        assert process["process"] == service.owner
        assert process["role"] == "worker" and process["alive"]
        assert status["leaders"] == {job: service.owner for job in JOBS}
        table = ok(run, "cluster", "status")
        assert service.owner in table and "reconcile" in table
    # A process that stops cleanly takes its row with it.
    gone = json.loads(ok(run, "cluster", "status", "--json"))
    assert gone["processes"] == [] and set(gone["leaders"].values()) == {None}
    assert "No process has reported in" in ok(run, "cluster", "status")
