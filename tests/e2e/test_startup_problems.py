"""`smsdesk serve` and `smsdesk worker` that cannot start say why in one plain line and exit 1,
and `serve` never claims to listen on a port it could not take."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsdesk.testing import free_port
from tests.support.processes import Processes, SmsdeskProcess, smsdesk_env, wait_until

pytestmark = pytest.mark.slow

PASSWORD = "s3cret-pw"


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port on 127.0.0.1 another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def error_line(process: SmsdeskProcess) -> str:
    """The process ended by itself with status 1, printing one error line and no traceback."""
    wait_until(lambda: process.returncode is not None, f"{process} to end", timeout=60)
    output = process.output()
    assert process.returncode == 1, output
    assert "Traceback" not in output
    assert "smsdesk listening" not in output
    assert PASSWORD not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]


def start(processes: Processes, command: str, data_dir: Path, **settings: str) -> SmsdeskProcess:
    env = smsdesk_env(data_dir=data_dir, **settings)
    return processes.server(env) if command == "serve" else processes.worker(env)


def test_a_port_in_use_is_said_plainly_before_listening(
    processes: Processes, tmp_path: Path, held_port: int
) -> None:
    server = processes.server(smsdesk_env(data_dir=tmp_path / "data", port=str(held_port)))
    assert error_line(server) == (
        f"error: port {held_port} on 127.0.0.1 is already in use; stop the other process or "
        "choose another with --port / SMSDESK_PORT"
    )


def test_an_address_this_machine_does_not_have_is_said_plainly(
    processes: Processes, tmp_path: Path
) -> None:
    """192.0.2.1 (documentation addresses) is on no interface here."""
    server = processes.server(smsdesk_env(data_dir=tmp_path / "data", host="192.0.2.1"))
    assert error_line(server) == (
        "error: cannot listen on 192.0.2.1: this machine has no such address; choose another "
        "with --host / SMSDESK_HOST (127.0.0.1 for this machine only, 0.0.0.0 for all)"
    )


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_no_database_server_is_one_line(processes: Processes, tmp_path: Path, command: str) -> None:
    """PostgreSQL not running at the URL's address: where, why, and what to check."""
    port = free_port()
    url = f"postgresql://smsdesk:{PASSWORD}@127.0.0.1:{port}/smsdesk"
    process = start(processes, command, tmp_path / "data", database_url=url)
    assert error_line(process) == (
        f"error: cannot connect to the database at 127.0.0.1:{port}/smsdesk (Connection "
        "refused); is the server running, and are --database-url / SMSDESK_DATABASE_URL right?"
    )


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_url_naming_no_driver_is_one_line(
    processes: Processes, tmp_path: Path, command: str
) -> None:
    url = f"postgresql+nosuchdriver://smsdesk:{PASSWORD}@127.0.0.1/smsdesk"
    process = start(processes, command, tmp_path / "data", database_url=url)
    assert error_line(process) == (
        "error: the database URL names 'postgresql+nosuchdriver', which is no installed database "
        "driver; write it as postgresql://user:password@host:5432/dbname"
    )
