"""The real `smsdesk` command as child processes on loopback, for end-to-end tests.

Each process writes its standard output and error to a log file; readiness is a condition
polled until a deadline (the API answers /healthz, a worker says it is running), never a
fixed sleep. Processes are stopped by their process id: SIGTERM, then SIGKILL after a grace
period; `kill` is SIGKILL at once, for crash tests.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sysconfig
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TypeVar

import httpx

from smsdesk.testing import free_port

T = TypeVar("T")

FIRST_KEY = re.compile(r"first admin API key \(shown only now\): (sd_\S+)")
LISTENING = re.compile(r"smsdesk listening on (http://\S+)")
WORKER_RUNNING = re.compile(r"dispatcher (\S+) running")


def wait_until(
    condition: Callable[[], T | None], what: str, timeout: float = 20.0, interval: float = 0.02
) -> T:
    """Poll `condition` until it returns something other than None or False; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def smsdesk_command() -> list[str]:
    """The installed console script of this interpreter (not a shim that may pick another)."""
    script = Path(sysconfig.get_path("scripts")) / "smsdesk"
    if script.exists():
        return [str(script)]
    found = shutil.which("smsdesk")
    if found is None:
        raise RuntimeError("the smsdesk command is not installed: pip install -e .")
    return [found]


def smsdesk_env(**settings: str | os.PathLike[str]) -> dict[str, str]:
    """This environment without any SMSDESK_* variable, plus `settings` as SMSDESK_<NAME>."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSDESK_")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="200")
    env.update({f"SMSDESK_{name.upper()}": str(value) for name, value in settings.items()})
    return env


class SmsdeskProcess:
    """One running `smsdesk` command whose output goes to `log_path`."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - open while it runs
        self.process = subprocess.Popen(
            [*smsdesk_command(), *args],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, pattern: re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
        """The first match of `pattern` in the log; fails early if the process ends."""

        def matched() -> re.Match[str] | None:
            found = pattern.search(self.output())
            if found is None and self.returncode is not None:
                raise RuntimeError(f"{self} ended ({self.returncode}):\n{self.output()}")
            return found

        return wait_until(matched, f"{pattern.pattern!r} from {self}", timeout)

    def stop(self, grace: float = 20.0) -> int:
        """SIGTERM, and SIGKILL if still running after `grace` seconds; the exit status."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            os.kill(self.pid, signal.SIGCONT)  # a paused process must run to handle it
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def kill(self) -> int:
        """SIGKILL: a crash, with no chance to finish anything."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()
        return self.process.returncode

    def pause(self) -> None:
        """SIGSTOP: freeze the process where it is (to look at its state, then kill it)."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def __str__(self) -> str:
        return f"smsdesk {' '.join(self.args)} (pid {self.pid})"


class Server(SmsdeskProcess):
    """`smsdesk serve`, on SMSDESK_PORT if `env` sets it, else on a free loopback port."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = int(env.get("SMSDESK_PORT") or free_port())
        super().__init__(["serve"], {**env, "SMSDESK_PORT": str(self.port)}, log_path)
        self.url = f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        if self.returncode is not None:
            raise RuntimeError(f"{self} ended ({self.returncode}):\n{self.output()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout: float = 30.0) -> Server:
        wait_until(self.healthy, f"{self} to answer /healthz", timeout)
        return self

    def first_key(self) -> str | None:
        """The admin API key printed on the very first start, if this start printed one."""
        found = FIRST_KEY.search(self.output())
        return found.group(1) if found else None


class Worker(SmsdeskProcess):
    """`smsdesk worker`: a dispatcher only."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        super().__init__(["worker"], env, log_path)

    def wait_ready(self, timeout: float = 30.0) -> Worker:
        self.wait_for_output(WORKER_RUNNING, timeout)
        return self


class Processes:
    """Starts smsdesk processes and stops every one still running at the end of a test."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[SmsdeskProcess] = []

    def _log(self, name: str) -> Path:
        return self.log_dir / f"{name}-{len(self.started)}.log"

    def server(self, env: Mapping[str, str], name: str = "serve") -> Server:
        server = Server(env, self._log(name))
        self.started.append(server)
        return server

    def worker(self, env: Mapping[str, str], name: str = "worker") -> Worker:
        worker = Worker(env, self._log(name))
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()
