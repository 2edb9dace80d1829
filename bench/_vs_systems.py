"""The two systems bench/vs_kannel.py compares, each started fresh and seen from outside.

Each system offers the same few things: where to send, the encoded requests, the server
processes to read CPU and memory of (from /proc), and how many delivery reports have been
applied so far with the wall-clock time of the last one.

- Kannel: bearerbox + smsbox + Debian's fakesmsc (tests/support/kannel.py). Every sendsms
  request asks for a delivered report (dlr-mask=1) at a dlr-url on a receiver process of the
  bench (_dlr_receiver.py); bearerbox's fake SMSC driver makes that report itself.
- smsdesk: one `smsdesk serve` with its dispatcher, the simulator module with report delay 0
  (each report comes back to the same process over HTTP), an admin API key. Reports applied =
  messages whose status is delivered, counted read-only in the database, the time of the last
  being the largest `updated_at` among them. Only messages of this run count (ids from the
  server's start on, an index range), so messages stored before (`stored`) cost nothing to count.

With `stored` N > 0 the smsdesk database holds N finished messages before `serve` starts
(bench/_prefill.py): `StoredMessages` fills a data directory (and PostgreSQL database) once per
N and each run starts from a copy of it (the files; `CREATE DATABASE ... TEMPLATE`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

import _dlr_receiver
from _lean_client import LeanClient, LoadResult
from _prefill import Filled, prefill
from _server import (
    _create_key,
    _stop,
    _wait_healthy,
    free_port,
    scratch_postgres_database,
    smsdesk_command,
    sqlalchemy_url,
)
from sqlalchemy.pool import NullPool

from smsdesk.store.retention import id_before

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def number(i: int) -> str:
    """A valid Dutch mobile number, different for each i below ten million."""
    return f"+3161{i % 10_000_000:07d}"


def text(i: int) -> str:
    return f"Bench {i}: your request was answered. Reply STOP to opt out."


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process, its live descendants and the children it has reaped (cutime+cstime):
    PostgreSQL's backends come and go."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    reaped = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
    return reaped + sum(cpu_seconds(p) for p in descendants(pid))


def peak_rss_kib(pid: int) -> int:
    """VmHWM: the most resident memory the process has had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """The process and every process below it (workers a server may fork)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(child) for child in task.read_text().split()]
    return found


class System(Protocol):
    name: str
    host: str
    port: int

    def requests(self, start: int, count: int) -> list[bytes]: ...

    def processes(self) -> dict[str, int]:
        """The server processes by name: their CPU and memory are the system's."""
        ...

    def helpers(self) -> dict[str, int]:
        """Processes the bench runs for the system that are not the system (measured apart)."""
        ...

    def reports(self) -> tuple[int, float]:
        """Delivered reports applied so far and the wall time of the last one."""
        ...


@dataclass
class Kannel:
    name = "Kannel"
    host = "127.0.0.1"
    port: int
    password: str
    receiver_port: int
    pids: dict[str, int] = field(default_factory=dict)
    receiver_pid: int = 0

    def requests(self, start: int, count: int) -> list[bytes]:
        dlr_url = quote(f"http://127.0.0.1:{self.receiver_port}/dlr?type=%d", safe="")
        prefix = (
            f"GET /cgi-bin/sendsms?username=smsdesk&password={self.password}"
            f"&from=smsdesk&charset=UTF-8&dlr-mask=1&dlr-url={dlr_url}"
        )
        tail = f" HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n"
        return [
            f"{prefix}&to={quote(number(i))}&text={quote(text(i))}{tail}".encode()
            for i in range(start, start + count)
        ]

    def processes(self) -> dict[str, int]:
        return self.pids

    def helpers(self) -> dict[str, int]:
        return {"dlr receiver": self.receiver_pid}

    def reports(self) -> tuple[int, float]:
        delivered, last_at, _ = _dlr_receiver.status(self.receiver_port)
        return delivered, last_at


@contextmanager
def running_kannel() -> Iterator[Kannel]:
    """A DLR receiver process, then bearerbox, fakesmsc and smsbox; all stopped by pid after."""
    from tests.support.kannel import KannelGateway, kannel_installed

    if not kannel_installed():
        raise SystemExit("Kannel is not installed: apt-get install -y kannel kannel-extras")
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, str(Path(_dlr_receiver.__file__)), str(port)],
        stdout=subprocess.PIPE,
    )
    try:
        assert receiver.stdout is not None
        if receiver.stdout.readline().strip() != b"ready":
            raise RuntimeError("the DLR receiver did not start")
        with KannelGateway(get_url=f"http://127.0.0.1:{port}/mo?from=%p") as gateway:
            assert gateway.bearerbox and gateway.smsbox and gateway.fakesmsc
            yield Kannel(
                gateway.sendsms_port,
                gateway.password,
                port,
                {
                    "bearerbox": gateway.bearerbox.process.pid,
                    "smsbox": gateway.smsbox.process.pid,
                    "fakesmsc": gateway.fakesmsc.process.pid,
                },
                receiver.pid,
            )
    finally:
        receiver.terminate()
        receiver.wait(10)


@dataclass
class Smsdesk:
    name = "smsdesk"
    host = "127.0.0.1"
    port: int
    api_key: str
    pid: int
    database_url: str
    postgres_pid: int | None = None
    stored: int = 0
    first_id: str = field(default_factory=lambda: id_before(time.time()))
    _reader: Any = None

    def requests(self, start: int, count: int) -> list[bytes]:
        head = (
            f"POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {self.api_key}\r\nContent-Type: application/json\r\n"
        ).encode()
        out = []
        for i in range(start, start + count):
            body = orjson.dumps({"to": number(i), "text": text(i)})
            out.append(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return out

    def processes(self) -> dict[str, int]:
        children = [p for p in descendants(self.pid) if p != self.pid]
        return {"serve": self.pid} | {f"serve child {n}": p for n, p in enumerate(children, 1)}

    def helpers(self) -> dict[str, int]:
        return {"postgres": self.postgres_pid} if self.postgres_pid else {}

    def reports(self) -> tuple[int, float]:
        query = (
            "SELECT count(*), max(updated_at) FROM messages "
            f"WHERE status = 'delivered' AND id >= '{self.first_id}'"
        )
        if self._reader is None:
            self._reader = _read_only(self.database_url)
        cursor = self._reader.execute(query)
        count, last = cursor.fetchone()
        if not isinstance(self._reader, sqlite3.Connection):
            self._reader.rollback()  # a fresh snapshot next time
        return int(count), float(last or 0.0)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def _read_only(url: str) -> Any:
    parsed = sa.make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return sqlite3.connect(f"file:{parsed.database}?mode=ro", uri=True)
    import psycopg

    plain = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(plain, options="-c default_transaction_read_only=on")


def serve_supports_processes() -> bool:
    done = subprocess.run(
        [*smsdesk_command(), "serve", "--help"], capture_output=True, text=True, check=False
    )
    return "--processes" in done.stdout


@contextmanager
def running_postgres() -> Iterator[tuple[str, int]]:
    """A throwaway PostgreSQL from Debian's package (tests/support/postgres.py: fsync=off):
    its admin URL and the postmaster's pid."""
    from tests.support.postgres import start_postgres

    postgres = start_postgres()
    try:
        assert postgres.process is not None
        yield postgres.url("postgres"), postgres.process.pid
    finally:
        postgres.stop()


def _environment(data_dir: Path, url: str, log_level: str) -> dict[str, str]:
    return {
        **os.environ,
        "SMSDESK_DATA_DIR": str(data_dir),
        "SMSDESK_DATABASE_URL": url,
        "SMSDESK_HOST": "127.0.0.1",
        "SMSDESK_LOG_LEVEL": log_level,
    }


@dataclass
class StoredMessages:
    """Data directories (and PostgreSQL databases) holding N finished messages, filled once per
    N and copied for each run; `close` removes them."""

    postgres: tuple[str, int] | None
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="smsdesk-stored-")))
    filled: dict[int, Filled] = field(default_factory=dict)

    def template(self, count: int) -> str:
        return f"smsdesk_stored_{count}"

    def directory(self, count: int) -> Path:
        return self.root / f"stored-{count}"

    def ensure(self, count: int) -> Filled:
        """Migrate and fill the copy source for `count` messages, unless it exists already."""
        if count in self.filled:
            return self.filled[count]
        data_dir = self.directory(count)
        data_dir.mkdir()
        url = f"sqlite:///{data_dir}/smsdesk.sqlite3"
        if self.postgres is not None:
            self._admin(f'CREATE DATABASE "{self.template(count)}"')
            url = self._url(self.template(count))
        _create_key(_environment(data_dir, url, "WARNING"))
        self.filled[count] = prefill(url, count)
        return self.filled[count]

    @contextmanager
    def copy(self, count: int, data_dir: Path) -> Iterator[str]:
        """Its files into `data_dir` (and a copy of its PostgreSQL database): the URL to use."""
        self.ensure(count)
        shutil.copytree(self.directory(count), data_dir, dirs_exist_ok=True)
        if self.postgres is None:
            yield f"sqlite:///{data_dir}/smsdesk.sqlite3"
            return
        name = f"smsdesk_bench_{uuid.uuid4().hex[:10]}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template(count)}"')
        try:
            yield self._url(name)
        finally:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self.postgres is not None:
            for count in self.filled:
                self._admin(f'DROP DATABASE IF EXISTS "{self.template(count)}" WITH (FORCE)')
        shutil.rmtree(self.root, ignore_errors=True)

    def _url(self, name: str) -> str:
        assert self.postgres is not None
        admin = sa.make_url(sqlalchemy_url(self.postgres[0]))
        return admin.set(database=name).render_as_string(hide_password=False)

    def _admin(self, statement: str) -> None:
        assert self.postgres is not None
        engine = sa.create_engine(
            sqlalchemy_url(self.postgres[0]), poolclass=NullPool, isolation_level="AUTOCOMMIT"
        )
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(statement)
        finally:
            engine.dispose()


@contextmanager
def running_smsdesk(
    *,
    postgres: tuple[str, int] | None,
    processes: int | None,
    log_level: str,
    stored: int = 0,
    cache: StoredMessages | None = None,
    command: list[str] | None = None,
) -> Iterator[Smsdesk]:
    """A fresh data directory (and PostgreSQL database), an admin key, `smsdesk serve`, and
    the simulator configured to report at once. With `stored`, the database holds that many
    finished messages before serve starts (copied from `cache`, which fills it once).
    `command` runs instead of the `smsdesk` entry point (for a probe around it)."""
    with ExitStack() as stack:
        data_dir = Path(tempfile.mkdtemp(prefix="smsdesk-vs-kannel-"))
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        url = f"sqlite:///{data_dir}/smsdesk.sqlite3"
        if stored:
            if cache is None:
                cache = stack.enter_context(_closing(StoredMessages(postgres)))
            url = stack.enter_context(cache.copy(stored, data_dir))
        elif postgres is not None:
            url = stack.enter_context(scratch_postgres_database(postgres[0]))
        port = free_port()
        env = _environment(data_dir, url, log_level) | {"SMSDESK_PORT": str(port)}
        api_key = _create_key(env)
        extra = ["--processes", str(processes)] if processes else []
        log_path = data_dir / "serve.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*(command or smsdesk_command()), "serve", *extra],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        stack.callback(_stop, process)
        first_id = id_before(time.time())
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(process, base, log_path, 60)
        answer = httpx.put(
            f"{base}/api/v1/settings",
            headers={"Authorization": f"Bearer {api_key}"},
            json={"module": "simulator", "module_settings": {"simulator": {"report_delay": 0}}},
            timeout=30,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"settings: {answer.status_code} {answer.text[:300]}")
        # Another process of `serve --processes N` sees a saved configuration within its cache
        # time (1 s): until then its simulator would report after the default delay.
        time.sleep(1.2)
        system = Smsdesk(
            port, api_key, process.pid, url, postgres[1] if postgres else None, stored, first_id
        )
        stack.callback(system.close)
        yield system


@contextmanager
def _closing(cache: StoredMessages) -> Iterator[StoredMessages]:
    try:
        yield cache
    finally:
        cache.close()


def warm_up(runner: asyncio.Runner, client: LeanClient, system: Smsdesk, connections: int) -> int:
    """Open the client's connections and send one message over each; returns the reports
    applied once they are in (the count a measured load's reports are added to)."""
    runner.run(client.open())
    warm = runner.run(client.run(system.requests(0, connections)))
    applied, _ = wait_for_reports(system, sum(warm.statuses.values()), timeout=60)
    return applied


def wait_for_reports(system: System, target: int, timeout: float) -> tuple[int, float]:
    """Poll until `target` reports are applied (or the timeout): (count, last one's time)."""
    deadline = time.monotonic() + timeout
    count, last = system.reports()
    while count < target and time.monotonic() < deadline:
        time.sleep(0.05)
        count, last = system.reports()
    return count, last


def probed_load(
    probe: Path, n: int, connections: int, stored: int = 0
) -> tuple[LoadResult, dict[str, Any] | list[Any]]:
    """vs_kannel's load (N messages over C connections, after a warm-up) against a `serve`
    started through `probe`, a script that wraps the `smsdesk` entry point. SIGUSR1 tells the
    probe the measured load begins, SIGUSR2 asks for its summary, written as JSON to the file
    named by SMSDESK_PROBE_REPORT. Returns what the client saw and that summary."""
    report = Path(tempfile.mkdtemp(prefix="smsdesk-probe-")) / "probe.json"
    os.environ["SMSDESK_PROBE_REPORT"] = str(report)
    with (
        asyncio.Runner() as runner,
        running_smsdesk(
            postgres=None,
            processes=None,
            log_level="INFO",
            stored=stored,
            command=[sys.executable, str(probe)],
        ) as system,
    ):
        client = LeanClient(system.host, system.port, connections)
        try:
            baseline = warm_up(runner, client, system, connections)
            os.kill(system.pid, signal.SIGUSR1)
            result = runner.run(client.run(system.requests(connections, n)))
            ok = sum(count for status, count in result.statuses.items() if 200 <= status < 300)
            wait_for_reports(system, baseline + ok, timeout=max(120, n / 20))
        finally:
            client.close()
        os.kill(system.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while not report.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return result, json.loads(report.read_text())
