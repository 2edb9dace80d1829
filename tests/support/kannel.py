"""A real Kannel on loopback for tests: bearerbox, smsbox and Debian's fakesmsc as the SMSC.

The configuration is written to a temporary directory and binds 127.0.0.1 only. Two fake SMSC
links exist: `fake` takes the messages we send (a `fakesmsc` process prints each one), and
`mo` only injects mobile-originated messages (a short-lived `fakesmsc` per message), so a
test can inject without disturbing what the first one receives. Readiness is read from
bearerbox's admin status page; every process is stopped by its own process id.

smsbox gets the `http-request-retry` / `http-queue-delay` that docs/KANNEL.md asks every
installation for: a dlr-url or get-url call that fails is tried again every second, so reports
that come while smsdesk is down reach it once it is back.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote_to_bytes

import httpx

from smsdesk.testing import free_port
from tests.support.processes import wait_until

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
USERNAME = "smsdesk"
ADMIN_PASSWORD = "admin-secret"
# smsbox's retries of failed dlr-url and get-url calls, as docs/KANNEL.md recommends them.
HTTP_REQUEST_RETRY = 3600
HTTP_QUEUE_DELAY = 1
_GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (\S+) (.*)>$", re.MULTILINE)


def kannel_installed() -> bool:
    return all(os.access(path, os.X_OK) for path in (BEARERBOX, SMSBOX, FAKESMSC))


@dataclass(frozen=True)
class ReceivedSms:
    """One SMS part as the fake SMSC received it from Kannel."""

    sender: str
    to: str
    kind: str
    data: str

    @property
    def udh(self) -> bytes:
        return unquote_to_bytes(self.data.split(" ", 1)[0]) if self.kind == "udh" else b""

    @property
    def payload(self) -> bytes:
        """The part's bytes: fakesmsc prints them URL-encoded, except plain text."""
        if self.kind == "text":
            return self.data.encode()
        body = self.data.split(" ", 2)[-1] if self.kind == "udh" else self.data
        return unquote_to_bytes(body.replace("+", "%20"))

    def text(self, *, ucs2: bool = False) -> str:
        return self.payload.decode("utf-16-be" if ucs2 else "utf-8")


def joined_text(parts: list[ReceivedSms], *, ucs2: bool = False) -> str:
    """The text of one message from its parts, in the order of their UDH part numbers."""
    ordered = sorted(parts, key=lambda part: part.udh[-1:])
    return b"".join(part.payload for part in ordered).decode("utf-16-be" if ucs2 else "utf-8")


class _Process:
    """A child process logging to a file, stopped by its pid."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - open while it runs
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


class KannelGateway:
    """bearerbox + smsbox + a fakesmsc, configured for one sendsms user and one get-url."""

    def __init__(self, get_url: str, password: str = "kannel-secret") -> None:
        self.get_url = get_url
        self.password = password
        self.dir = Path(tempfile.mkdtemp(prefix="kannel-"))
        self.admin_port, self.box_port, self.sendsms_port = free_port(), free_port(), free_port()
        self.fake_port, self.mo_port = free_port(), free_port()
        self.bearerbox: _Process | None = None
        self.smsbox: _Process | None = None
        self.fakesmsc: _Process | None = None
        self._smsc_logs: list[Path] = []
        self._injected = 0

    @property
    def sendsms_url(self) -> str:
        """What the kannel module's base URL must be."""
        return f"http://127.0.0.1:{self.sendsms_port}"

    def config(self) -> str:
        loopback = '"127.0.0.1"'
        groups = [
            ("core", f"admin-port = {self.admin_port}", f"admin-interface = {loopback}",
             f"admin-password = {ADMIN_PASSWORD}", f"smsbox-port = {self.box_port}",
             f"smsbox-interface = {loopback}", f"box-allow-ip = {loopback}",
             "dlr-storage = internal", f'log-file = "{self.dir}/bearerbox.log"', "log-level = 1"),
            ("smsc", "smsc = fake", "smsc-id = fake", f"port = {self.fake_port}",
             f"our-host = {loopback}", f"connect-allow-ip = {loopback}"),
            ("smsc", "smsc = fake", "smsc-id = mo", f"port = {self.mo_port}",
             f"our-host = {loopback}", f"connect-allow-ip = {loopback}", "allowed-smsc-id = mo"),
            ("smsbox", f"bearerbox-host = {loopback}", f"sendsms-port = {self.sendsms_port}",
             f"sendsms-interface = {loopback}", f'log-file = "{self.dir}/smsbox.log"',
             "log-level = 1", f"http-request-retry = {HTTP_REQUEST_RETRY}",
             f"http-queue-delay = {HTTP_QUEUE_DELAY}"),
            ("sendsms-user", f"username = {USERNAME}", f"password = {self.password}",
             f"user-allow-ip = {loopback}", "max-messages = 10", "concatenation = true"),
            ("sms-service", "keyword = default", "max-messages = 0",
             f'get-url = "{self.get_url}"'),
        ]  # fmt: skip
        return "\n\n".join("\n".join([f"group = {name}", *lines]) for name, *lines in groups) + "\n"

    def start(self) -> KannelGateway:
        conf = self.dir / "kannel.conf"
        conf.write_text(self.config())
        self.bearerbox = _Process([BEARERBOX, "-v", "1", str(conf)], self.dir / "bearerbox.out")
        wait_until(lambda: self._accepts(self.box_port), "bearerbox's smsbox port", 15)
        self._run_fakesmsc()
        self.start_smsbox()
        wait_until(self._smsc_online, "the fake SMSC link online", 15)
        return self

    def _run_fakesmsc(self) -> None:
        log = self.dir / f"fakesmsc-{len(self._smsc_logs)}.out"
        self._smsc_logs.append(log)
        self.fakesmsc = _Process(
            [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.fake_port), "-m", "0", "-v", "0", "x"],
            log,
        )

    def _smsc_online(self) -> bool:
        status = self.status()
        return "fake[fake]" in status and "(online" in status.split("fake[fake]")[1][:80]

    def stop_smsc(self) -> None:
        """Take the SMSC link down: Kannel keeps what it is sent queued until start_smsc()."""
        if self.fakesmsc is not None:
            self.fakesmsc.stop(signal.SIGINT)
            self.fakesmsc = None
        wait_until(lambda: not self._smsc_online(), "the fake SMSC link to go down", 15)

    def start_smsc(self) -> None:
        """Bring the SMSC link back: Kannel sends what it queued (and reports on it)."""
        self._run_fakesmsc()
        wait_until(self._smsc_online, "the fake SMSC link online again", 15)

    def start_smsbox(self) -> None:
        """Start smsbox (again) and wait until it answers sendsms requests."""
        conf = str(self.dir / "kannel.conf")
        self.smsbox = _Process([SMSBOX, "-v", "1", conf], self.dir / "smsbox.out")
        wait_until(lambda: self._accepts(self.sendsms_port), "smsbox's sendsms port", 15)
        wait_until(lambda: "smsbox:" in self.status(), "smsbox on-line at bearerbox", 15)

    def stop_smsbox(self) -> None:
        """Take Kannel's HTTP side down: sendsms requests are refused until start_smsbox()."""
        if self.smsbox is not None:
            self.smsbox.stop()
            self.smsbox = None
        wait_until(lambda: not self._accepts(self.sendsms_port), "smsbox to stop", 15)

    def status(self) -> str:
        try:
            response = httpx.get(
                f"http://127.0.0.1:{self.admin_port}/status.txt",
                params={"password": ADMIN_PASSWORD},
                timeout=2,
            )
        except httpx.TransportError:
            return ""
        return response.text

    def received(self) -> list[ReceivedSms]:
        """Every message the fake SMSC got from Kannel, oldest first (over its restarts)."""
        logs = [log.read_text(errors="replace") for log in self._smsc_logs if log.exists()]
        return [ReceivedSms(*found) for text in logs for found in _GOT.findall(text)]

    def inject_mo(self, sender: str, to: str, text: str) -> None:
        """Have a fakesmsc hand Kannel one mobile-originated message; return once Kannel has it.

        Non-GSM text goes as UCS-2, which Kannel passes to the get-url as UTF-16BE.
        """
        try:
            text.encode("latin-1")
            kind, data = "text", text
        except UnicodeEncodeError:
            kind = "ucs2"
            data = "".join(f"%{byte:02X}" for byte in text.encode("utf-16-be"))
        self._injected += 1
        injector = _Process(
            [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.mo_port), "-m", "1", "-i", "0",
             "-v", "0", f"{sender} {to} {kind} {data}"],
            self.dir / f"inject-{self._injected}.out",
        )  # fmt: skip
        try:
            wait_until(lambda: self._mo_received() >= self._injected, "Kannel to take the MO", 15)
        finally:
            injector.stop(signal.SIGINT)

    def _mo_received(self) -> int:
        found = re.search(r"mo\[mo\].*?rcvd: sms (\d+)", self.status())
        return int(found.group(1)) if found else 0

    @staticmethod
    def _accepts(port: int) -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def smsbox_log(self) -> str:
        """smsbox's log file: its failed HTTP calls (dlr-url, get-url) are logged there."""
        path = self.dir / "smsbox.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        """Everything Kannel logged, for a failing test's message."""
        parts = []
        for path in sorted(self.dir.glob("*.log")) + sorted(self.dir.glob("*.out")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop what was started, by process id, and remove the configuration."""
        for process in (self.smsbox, self.fakesmsc, self.bearerbox):
            if process is not None:
                process.stop(signal.SIGINT if process is self.fakesmsc else signal.SIGTERM)
        self.smsbox = self.fakesmsc = self.bearerbox = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> KannelGateway:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
