"""`smsdesk serve --processes 2`: two API processes on one port, and a first process that
runs the dispatcher, woken by them.

The dispatcher's poll interval is set to 30 s, so a message is sent within the test's
deadlines only if the process that accepted it woke the first process's dispatcher.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store.tables import messages
from tests.conftest import database_url
from tests.support.processes import Processes, Server, smsdesk_env, wait_until

SLOW_POLL = "30"


def api_children(pid: int) -> list[int]:
    """The API processes the first `serve` started (its child processes)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def children_of(pid: int, count: int) -> list[int] | None:
    """The API processes of `pid`, once there are `count` of them."""
    children = api_children(pid)
    return children if len(children) == count else None


def replaced(pid: int, gone: int) -> list[int] | None:
    """The two API processes of `pid` once `gone` is no longer among them."""
    children = children_of(pid, 2)
    return children if children is not None and gone not in children else None


def statuses(engine: Engine, ids: list[str]) -> dict[str, str]:
    query = sa.select(messages.c.id, messages.c.status).where(messages.c.id.in_(ids))
    with engine.connect() as conn:
        return {i: status for i, status in conn.execute(query)}


def freeze_when_idle(server: Server, engine: Engine) -> None:
    """SIGSTOP the first process at a moment it holds neither SQLite's write lock nor the
    writers' turn (its heartbeat writes every few seconds); PostgreSQL writers do not block
    each other's inserts."""

    def frozen_idle() -> bool:
        server.pause()
        if engine.dialect.name != "sqlite":
            return True
        probe = sqlite3.connect(str(engine.url.database), timeout=0.2, isolation_level=None)
        turn = os.open(f"{engine.url.database}.writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:  # neither SQLite's write lock nor the writers' turn (store.writer.WriteTurns)
            fcntl.flock(turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(turn, fcntl.LOCK_UN)
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return True
        except (sqlite3.OperationalError, BlockingIOError):
            server.resume()
            return False
        finally:
            os.close(turn)
            probe.close()

    wait_until(frozen_idle, "the first process to be frozen between writes", timeout=30)


def send(url: str, key: str, count: int) -> list[str]:
    """`count` single messages, each on a fresh connection; all must be accepted."""
    ids = []
    for i in range(count):
        response = httpx.post(
            f"{url}/api/v1/messages",
            headers={"Authorization": f"Bearer {key}"},
            json={"to": f"+3161234{i:04d}", "text": "Your parcel is on its way."},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def test_api_processes_accept_and_wake_the_dispatcher_of_the_first(
    engine: Engine, processes: Processes, tmp_path: Path
) -> None:
    env = smsdesk_env(
        data_dir=tmp_path / "data",
        database_url=database_url(engine),
        processes="2",
        poll_interval=SLOW_POLL,
    )
    server = processes.server(env).wait_ready()
    key = server.first_key()
    assert key is not None, server.output()
    children = wait_until(lambda: children_of(server.pid, 2), "the two API processes")
    wait_until(lambda: "in 2 processes" in server.output(), "both API processes to listen")
    settings = {"module_settings": {"simulator": {"report_delay": 0}}}
    put = httpx.put(
        f"{server.url}/api/v1/settings", headers={"Authorization": f"Bearer {key}"}, json=settings
    )
    assert put.status_code == 200, put.text

    freeze_when_idle(server, engine)
    try:  # the first process answers no requests: its dispatcher is frozen
        ids = send(server.url, key, 5)
        assert set(statuses(engine, ids).values()) == {"queued"}
    finally:
        server.resume()
    wait_until(
        lambda: set(statuses(engine, ids).values()) == {"delivered"},
        "the messages the API processes accepted to be delivered before the next poll",
        timeout=20,
    )

    os.kill(children[0], signal.SIGKILL)
    replacement = wait_until(
        lambda: replaced(server.pid, children[0]),
        "the first process to start another API process",
    )
    assert f"(pid {children[0]}) ended with exit code -9" in server.output()
    more = send(server.url, key, 3)
    # Sent is enough: the dispatcher was woken. A delivery report can come later, when the
    # simulator's keep-alive connection to the killed process fails and it tries again.
    wait_until(
        lambda: set(statuses(engine, more).values()) <= {"sent", "delivered"},
        "the messages accepted after the restart to be sent before the next poll",
    )

    assert server.stop() == 0, server.output()
    assert not any(alive(c) for c in replacement), "an API process outlived the first process"


def test_api_processes_end_when_the_first_process_is_killed(
    processes: Processes, tmp_path: Path
) -> None:
    """...and the metrics directory the killed process could not remove goes at the next
    start."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = smsdesk_env(data_dir=tmp_path / "data", processes="3") | {"TMPDIR": str(temporary)}
    server = processes.server(env)
    server.wait_ready()
    children = wait_until(lambda: children_of(server.pid, 3), "the three API processes")
    server.kill()
    wait_until(
        lambda: not any(alive(c) for c in children),
        "the API processes to stop after the first one died",
    )
    [left] = temporary.glob("smsdesk-metrics-*")
    assert left.name.startswith(f"smsdesk-metrics-{server.pid}-")

    again = processes.server(env | {"SMSDESK_PROCESSES": "2"}, name="again")
    again.wait_ready()
    assert not left.exists(), "the killed process's metrics directory is still there"
    [own] = temporary.glob("smsdesk-metrics-*")
    assert own.name.startswith(f"smsdesk-metrics-{again.pid}-")
    assert again.stop() == 0, again.output()
    assert not own.exists()
