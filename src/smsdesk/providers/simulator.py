"""The simulator module: an SMS provider that sends nothing real.

It behaves like a provider that honours a client reference: sending the same message id twice
is accepted once and delivered once, which is what lets a crashed dispatcher retry safely. Its
ledger is a SQLite file in the data directory, so sends and pending reports survive restarts.
Delivery reports go out as HTTP callbacks to the status callback URL of each message, through
the same endpoint real providers call, after `report_delay` seconds. Like a provider with a
status API, it also answers status queries, for lost reports too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from smsdesk.domain.message import Status
from smsdesk.domain.sms import InboundSms, ModuleSettings, OutboundSms, StatusReport
from smsdesk.providers.base import (
    CallbackRequest,
    ModuleInfo,
    PermanentError,
    Provider,
    RateLimitedError,
    SendResult,
    TemporaryError,
    Transport,
)
from smsdesk.providers.fields import number_field, switch_field

log = logging.getLogger(__name__)

REPORT_STATUSES = {
    "DELIVRD": Status.DELIVERED,
    "UNDELIV": Status.UNDELIVERED,
    "EXPIRED": Status.EXPIRED,
    "REJECTD": Status.UNDELIVERED,
    "ENROUTE": Status.SENT,
    "ACCEPTD": Status.SENT,
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sends (
    reference TEXT PRIMARY KEY, provider_id TEXT NOT NULL UNIQUE, recipient TEXT NOT NULL,
    sender TEXT NOT NULL, body TEXT NOT NULL, attempts INTEGER NOT NULL, first_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY, provider_id TEXT NOT NULL, stat TEXT NOT NULL, err TEXT NOT NULL,
    callback_url TEXT NOT NULL, due_at REAL NOT NULL, claimed_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS reports_due ON reports (due_at);
CREATE TABLE IF NOT EXISTS outcomes (
    provider_id TEXT PRIMARY KEY, stat TEXT NOT NULL, err TEXT NOT NULL, done_at REAL NOT NULL
);
"""


class SimulatorSettings(ModuleSettings):
    """How the simulator behaves; every fault is a share between 0 and 1 of the sends."""

    report_delay: float = number_field(
        1.0,
        "Report delay (seconds)",
        "How long after sending the delivery report comes.",
        ge=0,
        le=3600,
    )
    report_retry: float = number_field(
        30.0,
        "Report retry (seconds)",
        "A report whose callback was not answered is sent again after this long.",
        gt=0,
        le=3600,
    )
    delivery_report: bool = switch_field(True, "Delivery report", "Send delivery reports at all.")
    temporary_failure_rate: float = number_field(
        0.0, "Temporary failures", "Share of sends refused as temporary.", ge=0, le=1
    )
    permanent_failure_rate: float = number_field(
        0.0, "Permanent failures", "Share of sends refused for good.", ge=0, le=1
    )
    throttle_rate: float = number_field(
        0.0, "Throttling", "Share of sends answered 'slow down'.", ge=0, le=1
    )
    retry_after: float = number_field(
        1.0, "Retry after (seconds)", "What a throttling answer asks us to wait.", ge=0, le=3600
    )
    undelivered_rate: float = number_field(
        0.0, "Undelivered", "Share of reports saying the phone was not reached.", ge=0, le=1
    )
    lost_report_rate: float = number_field(
        0.0, "Lost reports", "Share of reports never sent.", ge=0, le=1
    )
    duplicate_report_rate: float = number_field(
        0.0, "Duplicate reports", "Share of reports sent twice.", ge=0, le=1
    )
    seed: int | None = Field(None, title="Random seed", description="Makes the faults repeatable.")

    def wants_delivery_reports(self) -> bool:
        """The module's delivery-report switch."""
        return self.delivery_report


class SimulatorLedger:
    """The simulator's durable memory, shared by every process that uses the same file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def record_sends(
        self,
        sends: Sequence[tuple[OutboundSms, str]],
        reports: Sequence[tuple[str, str, str, str, float]],
        outcomes: Sequence[tuple[str, str, str, float]] = (),
    ) -> dict[str, str]:
        """Store accepted sends (idempotent by message id); return message id → provider id.

        `outcomes` (provider id, stat, err, done at) are what a status query answers, whether
        or not the report reaches us.
        """
        now = time.time()
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids: dict[str, str] = {}
            fresh: set[str] = set()
            for sms, provider_id in sends:
                row = conn.execute(
                    "INSERT INTO sends VALUES (?, ?, ?, ?, ?, 1, ?) ON CONFLICT(reference) DO "
                    "UPDATE SET attempts = attempts + 1 RETURNING provider_id, attempts",
                    (sms.message_id, provider_id, sms.to, sms.sender, sms.text, now),
                ).fetchone()
                ids[sms.message_id] = row[0]
                if row[1] == 1:
                    fresh.add(provider_id)
            conn.executemany(
                "INSERT INTO reports (provider_id, stat, err, callback_url, due_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [report for report in reports if report[0] in fresh],
            )
            conn.executemany(
                "INSERT INTO outcomes VALUES (?, ?, ?, ?)",
                [outcome for outcome in outcomes if outcome[0] in fresh],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return ids

    def claim_reports(self, limit: int, lease: float) -> list[tuple[int, str, str, str, str]]:
        """Take due reports for `lease` seconds, so a crashed reporter's reports go out later."""
        now = time.time()
        rows = self.conn.execute(
            "UPDATE reports SET claimed_until = ? WHERE id IN (SELECT id FROM reports "
            "WHERE due_at <= ? AND claimed_until < ? ORDER BY due_at LIMIT ?) "
            "RETURNING id, provider_id, stat, err, callback_url",
            (now + lease, now, now, limit),
        ).fetchall()
        return [tuple(row) for row in rows]

    def outcomes(
        self, provider_ids: Sequence[str], now: float
    ) -> list[tuple[str, str, str, float]]:
        """The final outcomes known by `now` of these sends; ids not known are left out."""
        marks = ",".join("?" * len(provider_ids))
        rows = self.conn.execute(
            "SELECT provider_id, stat, err, done_at FROM outcomes "
            f"WHERE provider_id IN ({marks}) AND done_at <= ?",
            (*provider_ids, now),
        ).fetchall()
        return [tuple(row) for row in rows]

    def provider_ids(self, references: Sequence[str]) -> dict[str, str]:
        """Our message id → the simulator's id, for the sends it holds among `references`."""
        marks = ",".join("?" * len(references))
        rows = self.conn.execute(
            f"SELECT reference, provider_id FROM sends WHERE reference IN ({marks})",
            tuple(references),
        ).fetchall()
        return {str(reference): str(provider_id) for reference, provider_id in rows}

    def finish_reports(self, ids: Sequence[int]) -> None:
        self.conn.executemany("DELETE FROM reports WHERE id = ?", [(i,) for i in ids])

    def release_reports(self, ids: Sequence[int]) -> None:
        """Give claimed reports back, to be taken by the next claim."""
        self.conn.executemany(
            "UPDATE reports SET claimed_until = 0 WHERE id = ?", [(i,) for i in ids]
        )

    def next_report_due(self) -> float | None:
        row = self.conn.execute("SELECT min(due_at) FROM reports").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def attempts_by_reference(self) -> dict[str, int]:
        """How many times each message id reached the simulator (tests count duplicates)."""
        return dict(self.conn.execute("SELECT reference, attempts FROM sends").fetchall())

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class SimulatorProvider(Provider):
    """Accepts everything (unless told to fail) and reports delivery over HTTP callbacks."""

    transport = Transport.NONE
    without_fake = "It is a fake itself: nothing leaves the process but its reports."
    max_batch: ClassVar[int] = 500
    dedupes_reference: ClassVar[bool] = True  # ON CONFLICT(reference)
    supports_status_query: ClassVar[bool] = True
    supports_sent_lookup: ClassVar[bool] = True
    settings: SimulatorSettings

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.ledger = SimulatorLedger(self.context.data_dir / "simulator.sqlite3")
        self._rng = random.Random(self.settings.seed)
        # Outcomes of sends without a report, drawn apart so reports' faults stay repeatable.
        self._quiet_rng = random.Random(self.settings.seed)
        self._reporter: asyncio.Task[None] | None = None
        self._closing = False
        self._wake = asyncio.Event()
        self.idle = False  # the report loop is waiting for a send or the next report due
        self.close_grace = 5.0  # seconds a closing provider waits for a post under way

    async def start(self) -> None:
        if self._reporter is None:
            self._closing = False
            self._reporter = asyncio.create_task(self._report_loop(), name="simulator-reports")

    async def has_pending_callbacks(self) -> bool:
        return await asyncio.to_thread(self.ledger.next_report_due) is not None

    async def close(self) -> None:
        """Stop the report loop, then close the ledger.

        The loop is asked to end, not cancelled: reports it is posting at that moment are
        delivered (a cut-off post would leave them claimed for `report_retry`), and in Python
        3.11 `wait_for` can swallow a cancellation that arrives as its wait for work ends, which
        left the loop running for ever. One still busy after `close_grace` is cancelled, and its
        unposted reports are released at once."""
        self._closing = True
        self._wake.set()
        reporter, self._reporter = self._reporter, None
        if reporter is not None:
            done, _ = await asyncio.wait({reporter}, timeout=self.close_grace)
            if not done:
                reporter.cancel()
                await asyncio.wait({reporter})
        self.ledger.close()

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        results: dict[str, SendResult] = {}
        accepted: list[tuple[OutboundSms, str]] = []
        reports: list[tuple[str, str, str, str, float]] = []
        outcomes: list[tuple[str, str, str, float]] = []
        for sms in batch:
            fault = self._fault()
            if fault is not None:
                results[sms.message_id] = SendResult(
                    sms.message_id, error=fault, raw_code=fault.code
                )
                continue
            provider_id = f"SIM{self._rng.getrandbits(64):016x}"
            accepted.append((sms, provider_id))
            outcome, planned = self._planned_reports(sms, provider_id)
            outcomes.append(outcome)
            reports.extend(planned)
        ids = (
            await asyncio.to_thread(self.ledger.record_sends, accepted, reports, outcomes)
            if accepted
            else {}
        )
        for sms, _ in accepted:
            results[sms.message_id] = SendResult(sms.message_id, ids[sms.message_id], raw_code="0")
        if reports:
            self._wake.set()
        return [results[sms.message_id] for sms in batch]

    def _fault(self) -> TemporaryError | PermanentError | None:
        s = self.settings
        roll = self._rng.random()
        if roll < s.throttle_rate:
            return RateLimitedError(
                "Simulated throttling: too many messages.",
                code="SIM-429",
                retry_after=s.retry_after,
            )
        roll -= s.throttle_rate
        if roll < s.temporary_failure_rate:
            # Refused like a 503, before anything was recorded: not taken.
            return TemporaryError(
                "Simulated temporary failure.",
                code="SIM-503",
                not_taken=True,
                connection_level=True,
            )
        roll -= s.temporary_failure_rate
        if roll < s.permanent_failure_rate:
            return PermanentError("Simulated permanent failure: number rejected.", code="SIM-400")
        return None

    def _planned_reports(
        self, sms: OutboundSms, provider_id: str
    ) -> tuple[tuple[str, str, str, float], list[tuple[str, str, str, str, float]]]:
        """How the send ends (provider id, stat, err, when) and the reports that say so."""
        s = self.settings
        url = sms.status_callback_url
        reported = bool(s.delivery_report and sms.delivery_report and url)
        lost = reported and self._rng.random() < s.lost_report_rate
        rng = self._rng if reported and not lost else self._quiet_rng
        undelivered = rng.random() < s.undelivered_rate
        stat, err = ("UNDELIV", "001") if undelivered else ("DELIVRD", "000")
        done_at = time.time() + s.report_delay
        outcome = (provider_id, stat, err, done_at)
        if not url or not reported or lost:
            return outcome, []
        copies = 2 if self._rng.random() < s.duplicate_report_rate else 1
        return outcome, [(provider_id, stat, err, url, done_at)] * copies

    async def query_status(self, provider_message_ids: Sequence[str]) -> list[StatusReport]:
        """The outcome of each send that has ended by now, from the ledger."""
        if not provider_message_ids:
            return []
        rows = await asyncio.to_thread(
            self.ledger.outcomes, list(provider_message_ids), time.time()
        )
        return [
            StatusReport(
                provider_message_id=provider_id,
                status=REPORT_STATUSES[stat],
                raw_code=f"{stat}:{err}",
                description=stat,
                occurred_at=done_at,
            )
            for provider_id, stat, err, done_at in rows
        ]

    async def find_sent(self, message_ids: Sequence[str]) -> dict[str, str]:
        """The sends the ledger holds by our id (its `reference`)."""
        if not message_ids:
            return {}
        return await asyncio.to_thread(self.ledger.provider_ids, list(message_ids))

    async def _report_loop(self) -> None:
        while not self._closing:
            self._wake.clear()  # before the delivery: a send during it wakes the next one
            try:
                sent = await self._deliver_due_reports()
            except Exception:
                log.exception("simulator report delivery failed")
                sent = 0
            if sent:
                continue
            due = await asyncio.to_thread(self.ledger.next_report_due)
            timeout = 1.0 if due is None else min(max(due - time.time(), 0.005), 1.0)
            self.idle = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self.idle = False

    async def _deliver_due_reports(self) -> int:
        claimed = await asyncio.to_thread(
            self.ledger.claim_reports, 500, self.settings.report_retry
        )
        by_url: dict[str, list[tuple[int, str, str, str, str]]] = {}
        for row in claimed:
            by_url.setdefault(row[4], []).append(row)
        unposted = {row[0] for row in claimed}
        try:
            for url, rows in by_url.items():
                body = {
                    "reports": [
                        {"id": r[1], "stat": r[2], "err": r[3], "at": time.time()} for r in rows
                    ]
                }
                try:
                    response = await self.http.post(url, json=body, timeout=30)
                except Exception as exc:  # the service may be restarting; the claim expires
                    unposted.difference_update(r[0] for r in rows)
                    log.warning("simulator could not deliver %d reports: %s", len(rows), exc)
                    continue
                unposted.difference_update(r[0] for r in rows)
                if response.is_success:
                    await asyncio.to_thread(self.ledger.finish_reports, [r[0] for r in rows])
                else:
                    log.warning("simulator reports refused with HTTP %d", response.status_code)
        except asyncio.CancelledError:
            self.ledger.release_reports(sorted(unposted))  # due again now, not after the lease
            raise
        return len(claimed)

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        try:
            payload = json.loads(request.body)
            items = payload["reports"]
            return [
                StatusReport(
                    provider_message_id=str(item["id"]),
                    status=REPORT_STATUSES[item["stat"]],
                    raw_code=f"{item['stat']}:{item.get('err', '')}",
                    description=str(item["stat"]),
                    occurred_at=float(item["at"]) if "at" in item else None,
                )
                for item in items
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"Malformed simulator report: {exc}") from exc

    def parse_inbound(self, request: CallbackRequest) -> list[InboundSms]:
        try:
            item = json.loads(request.body)
            return [
                InboundSms(
                    str(item["id"]),
                    str(item["from"]),
                    str(item["to"]),
                    str(item["text"]),
                    time.time(),
                )
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"Malformed simulator inbound message: {exc}") from exc


MODULE = ModuleInfo(
    "simulator",
    "Simulator",
    "Sends nothing real; delivers after a delay and can inject faults. For trying and testing.",
    SimulatorSettings,
    SimulatorProvider,
)
