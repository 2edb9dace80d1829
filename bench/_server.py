"""Start a real `smsdesk serve` for a benchmark run and look at it from outside.

Everything here treats the service as a black box: a subprocess on a free loopback port with a
fresh data directory, reached over HTTP, its memory read from /proc and its stored messages
counted straight from the database.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def smsdesk_command() -> list[str]:
    """The `smsdesk` entry point of the interpreter running this script."""
    beside = Path(sys.executable).with_name("smsdesk")
    found = str(beside) if beside.exists() else shutil.which("smsdesk")
    if found is None:
        raise SystemExit("smsdesk is not installed: pip install -e '.[test]'")
    return [found]


def sqlalchemy_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


@dataclass
class Server:
    """One or more `smsdesk serve` processes sharing a database, and how to reach them."""

    processes: list[subprocess.Popen[bytes]]
    base_urls: list[str]
    api_key: str
    data_dir: Path
    database_url: str
    log_paths: list[Path]

    @property
    def pid(self) -> int:
        """The first process: the one that runs the dispatcher, if any does."""
        return self.processes[0].pid

    def rss_kib(self, field: str = "VmRSS") -> int:
        """A memory figure from /proc/<pid>/status, in KiB, added up over the processes."""
        total = 0
        for process in self.processes:
            status = Path(f"/proc/{process.pid}/status").read_text()
            total += next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith(field))
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU time the processes (all their threads) have used so far."""
        ticks = 0
        for process in self.processes:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def engine(self) -> Engine:
        return sa.create_engine(self.database_url, poolclass=NullPool)

    def stored_ids(self) -> set[str]:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return set(conn.execute(sa.text("SELECT id FROM messages")).scalars())
        finally:
            engine.dispose()

    def status_counts(self, engine: Engine) -> dict[str, int]:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT status, count(*) FROM messages GROUP BY status"))
            return {str(status): int(count) for status, count in rows}

    def database_bytes(self) -> int | None:
        """Size of the SQLite file with its WAL; None on PostgreSQL."""
        if not self.database_url.startswith("sqlite"):
            return None
        return sum(p.stat().st_size for p in self.data_dir.glob("smsdesk.sqlite3*"))


def _create_key(env: dict[str, str]) -> str:
    done = subprocess.run(
        [*smsdesk_command(), "apikey", "create", "--name", "bench", "--role", "admin"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"smsdesk apikey create failed:\n{done.stderr}")
    key = done.stdout.strip().splitlines()[-1].strip()
    if not key.startswith("sd_"):
        raise RuntimeError(f"unexpected output of smsdesk apikey create: {done.stdout!r}")
    return key


def _wait_healthy(
    process: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"smsdesk serve exited:\n{log_path.read_text()[-4000:]}")
        try:  # with --processes N, "listening" comes once every API process listens
            healthy = httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
            if healthy and b"smsdesk listening on" in log_path.read_bytes():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"smsdesk serve was not healthy within {timeout} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def scratch_postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of `admin_url`, dropped afterwards."""
    name = f"smsdesk_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        sqlalchemy_url(admin_url), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            sa.make_url(sqlalchemy_url(admin_url))
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _environment(data_dir: Path, database_url: str | None, log_level: str) -> dict[str, str]:
    env = {
        **os.environ,
        "SMSDESK_DATA_DIR": str(data_dir),
        "SMSDESK_HOST": "127.0.0.1",
        "SMSDESK_LOG_LEVEL": log_level,
    }
    if database_url:
        env["SMSDESK_DATABASE_URL"] = database_url
    return env


@contextmanager
def running_server(
    *,
    dispatcher: bool,
    database_url: str | None = None,
    processes: int = 1,
    log_level: str = "WARNING",
    keep: bool = False,
    timeout: float = 60.0,
) -> Iterator[Server]:
    """`smsdesk serve` on free loopback ports with a fresh data directory (and database).

    With several processes they share the database; only the first runs the dispatcher.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="smsdesk-bench-"))
    env = _environment(data_dir, database_url, log_level)
    server = Server([], [], "", data_dir, "", [])
    server.database_url = sqlalchemy_url(database_url or f"sqlite:///{data_dir}/smsdesk.sqlite3")
    try:
        server.api_key = _create_key(env)
        for index in range(processes):
            port = free_port()
            log_path = data_dir / f"serve-{index}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [*smsdesk_command(), "serve"],
                    env=env
                    | {
                        "SMSDESK_PORT": str(port),
                        "SMSDESK_DISPATCHER": str(dispatcher and index == 0).lower(),
                    },
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            server.processes.append(process)
            server.base_urls.append(f"http://127.0.0.1:{port}")
            server.log_paths.append(log_path)
            _wait_healthy(process, server.base_urls[-1], log_path, timeout)
        yield server
    finally:
        for process in server.processes:
            _stop(process)
        if keep:
            print(f"  (kept {data_dir})", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def database(name: str) -> Iterator[str | None]:
    """The database a bench runs on: None for SQLite (the server's own file), else the admin
    URL of a PostgreSQL started from Debian's package for the duration."""
    if name == "sqlite":
        yield None
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
    from tests.support.postgres import start_postgres

    postgres = start_postgres()
    try:
        yield postgres.url("postgres")
    finally:
        postgres.stop()
