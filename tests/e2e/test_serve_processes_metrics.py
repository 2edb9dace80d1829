"""/metrics of a `serve --processes 2` counts every process, whichever one answers the scrape:
the accepts of both API processes, the sends of the first (which answers no HTTP), the
reports, the live processes per role; nothing lost when a process dies."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_serve_processes import children_of, replaced, send
from tests.support.processes import Processes, Server, smsdesk_env, wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: Server, key: str) -> Samples:
    """One scrape on a fresh connection (the kernel picks the API process that answers)."""
    response = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def figures(samples: Samples) -> tuple[float, float, float]:
    """Accepted, sent and delivered messages of the simulator."""
    module = ("module", "simulator")
    return (
        samples.get(("smsdesk_messages_accepted_total", frozenset({module})), 0.0),
        samples.get(("smsdesk_messages_total", frozenset({module, ("status", "sent")})), 0.0),
        samples.get(("smsdesk_messages_total", frozenset({module, ("status", "delivered")})), 0.0),
    )


def roles(samples: Samples) -> dict[str, float]:
    """Live processes per role, as one process shows its own (the same labels)."""
    return {
        dict(labels)["role"]: value
        for (name, labels), value in samples.items()
        if name == "smsdesk_process_role"
    }


def shared_directory(pid: int) -> Path:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = [v for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    assert found, "the first process has no directory for its processes' metrics"
    return Path(os.fsdecode(found[0].split(b"=", 1)[1]))


def test_every_scrape_counts_all_processes_and_a_dead_one_keeps_its_counts(
    processes: Processes, tmp_path: Path
) -> None:
    server = processes.server(smsdesk_env(data_dir=tmp_path / "data", processes="2"))
    server.wait_ready()
    key = server.first_key()
    assert key is not None, server.output()
    wait_until(lambda: "in 2 processes" in server.output(), "both API processes to listen")
    children = wait_until(lambda: children_of(server.pid, 2), "the two API processes")
    put = httpx.put(
        f"{server.url}/api/v1/settings",
        headers={"Authorization": f"Bearer {key}"},
        json={"module_settings": {"simulator": {"report_delay": 0}}},
    )
    assert put.status_code == 200, put.text

    send(server.url, key, 6)
    wait_until(
        lambda: figures(scrape(server, key)) == (6, 6, 6), "six accepted, sent and delivered"
    )
    scrapes = [scrape(server, key) for _ in range(8)]
    assert {figures(s) for s in scrapes} == {(6, 6, 6)}
    assert all(roles(s) == {"api": 2, "worker": 1, "both": 0} for s in scrapes)

    directory = shared_directory(server.pid)
    os.kill(children[0], signal.SIGKILL)
    now = wait_until(lambda: replaced(server.pid, children[0]), "another API process")
    successor = (set(now) - set(children)).pop()
    wait_until(
        lambda: not list(directory.glob(f"gauge_live*_{children[0]}.db")),
        "the killed process's gauges to be dropped",
    )
    wait_until(
        lambda: (directory / f"gauge_livesum_{successor}.db").exists(),
        "the successor to say its role",
    )
    after = [scrape(server, key) for _ in range(4)]
    assert all(roles(s)["api"] == 2 for s in after)
    assert {figures(s) for s in after} == {(6, 6, 6)}, "the killed process's counts were lost"
    send(server.url, key, 2)
    wait_until(lambda: figures(scrape(server, key)) == (8, 8, 8), "eight of each, none lost")

    assert server.stop() == 0, server.output()
    assert not directory.exists(), "the first process left its metrics directory behind"


def test_a_metrics_directory_that_does_not_exist_is_named_before_anything_starts(
    processes: Processes, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-dir"
    env = {**smsdesk_env(data_dir=tmp_path / "data"), "PROMETHEUS_MULTIPROC_DIR": str(missing)}
    server = processes.server(env)
    assert server.process.wait(timeout=60) == 1
    assert (
        f"error: PROMETHEUS_MULTIPROC_DIR={missing} is not a directory: create it (empty) "
        "or unset the variable"
    ) in " ".join(server.output().split())
