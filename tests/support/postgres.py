"""A throwaway PostgreSQL server from Debian's packages, on loopback, for tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from smsdesk.testing import free_port


def _pg_bin() -> Path:
    for version in ("17", "16", "15", "14", "13"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin")
        if (candidate / "initdb").exists():
            return candidate
    raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str = "postgres"
    password: str = ""
    process: subprocess.Popen[bytes] | None = None
    directory: str | None = None
    log: IO[bytes] | None = None

    @classmethod
    def from_url(cls, url: str) -> PostgresServer:
        parts = urlsplit(url.replace("postgresql+psycopg", "postgresql"))
        return cls(
            parts.hostname or "127.0.0.1",
            parts.port or 5432,
            parts.username or "postgres",
            parts.password or "",
        )

    def url(self, database: str) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        dsn = f"host={self.host} port={self.port} user={self.user} dbname={database}"
        return dsn + (f" password={self.password}" if self.password else "")

    def log_size(self) -> int:
        """How far the server's log has been written (0 for a server started elsewhere)."""
        return os.path.getsize(f"{self.directory}/log") if self.directory else 0

    def log_since(self, offset: int) -> str:
        """What the server logged after `offset`: a crashed backend or a restart shows here."""
        if not self.directory:
            return ""
        with open(f"{self.directory}/log", "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)
            self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def admin_sql(server: PostgresServer, sql: str) -> None:
    import psycopg

    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(sql)


def start_postgres(timeout: float = 30.0) -> PostgresServer:
    """initdb in a temporary directory and start postgres on a free loopback port."""
    import psycopg

    pg_bin = _pg_bin()
    directory = tempfile.mkdtemp(prefix="smsdesk-pg-")
    as_postgres: dict[str, object] = {}
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
        as_postgres = {"user": "postgres", "group": "postgres", "extra_groups": []}
    subprocess.run(
        [
            str(pg_bin / "initdb"),
            "-D",
            f"{directory}/data",
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
        cwd=directory,
        **as_postgres,  # type: ignore[call-overload]
    )
    port = free_port()
    log = open(f"{directory}/log", "wb")  # noqa: SIM115 - the server writes to it until stopped
    process = subprocess.Popen(
        [
            str(pg_bin / "postgres"),
            "-D",
            f"{directory}/data",
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={directory}",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=300",
        ],
        stderr=log,
        stdout=log,
        cwd=directory,
        **as_postgres,  # type: ignore[call-overload]
    )
    server = PostgresServer("127.0.0.1", port, process=process, directory=directory, log=log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            psycopg.connect(server.dsn()).close()
            return server
        except psycopg.OperationalError:
            if process.poll() is not None:
                raise RuntimeError(Path(f"{directory}/log").read_text()) from None
            time.sleep(0.05)
    server.stop()
    raise TimeoutError(f"PostgreSQL did not start within {timeout} s")
