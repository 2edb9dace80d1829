"""The SMPP provider: sends batches over the bound session and turns deliver_sm into reports.

- `send` submits every part of every message of a batch at once, at most `window_size` in
  flight. A message's provider id is the message_id of its first part; receipts for any part
  are matched through all part ids, read in the one way the SMSC writes them (see `receipts`).
  A message is delivered when every part has a DELIVRD receipt; the first failed part's
  receipt decides otherwise.
- Receipts and mobile-originated messages arrive over the session and are handed to
  `ProviderContext.on_reports` / `on_inbound`; concatenated MO parts are reassembled first.
- A part refused or lost after an earlier part was accepted makes the whole message retry,
  so that part's predecessors may reach the phone twice: SMPP has no idempotent submit.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import smpp34

from smsdesk.domain.message import Status
from smsdesk.domain.sms import InboundSms, OutboundSms, StatusReport
from smsdesk.providers.base import PermanentError, Provider, ProviderError, SendResult, Transport
from smsdesk.providers.smpp import codec
from smsdesk.providers.smpp.receipts import PartReceipts, Tracked
from smsdesk.providers.smpp.session import BindPermit, SmppSession
from smsdesk.providers.smpp.settings import SmppSettings

log = logging.getLogger("smsdesk.providers.smpp")  # one logger for the module, as before the split
MATCH_RETRY_DELAY = 2.0  # seconds a receipt for an unknown id waits for its submit_sm answer
AMBIGUOUS_WAITS = 5  # waits a receipt two messages could own gets while `auto` learns the base
ASSEMBLY_TIMEOUT = 600.0  # seconds the parts of a concatenated MO are waited for


@dataclass(slots=True)
class _Assembly:
    parts: dict[int, str]
    total: int
    started: float


class SmppProvider(Provider):
    """Sends over one bound session (or a transmitter/receiver pair) kept open in the background."""

    transport = Transport.SMPP
    without_fake = (
        "Tested against smpp34's SMSC on loopback, started by the test run: "
        "tests/integration/test_smpp.py."
    )
    max_batch: ClassVar[int] = 200
    settings: SmppSettings

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._session = SmppSession(self.settings, self._on_deliver)
        self._reference = random.randrange(256)
        self._receipts = PartReceipts(self.settings.receipt_id_base)
        self._assemblies: dict[tuple[str, str, int, int], _Assembly] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._pending_reports: list[StatusReport] = []
        self._reports_waiting = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._storing = False

    def use_bind_permit(self, permit: BindPermit) -> None:
        """Bind only while holding one of the installation's bind slots (before `start`)."""
        self._session.permit = permit

    @property
    def bound(self) -> bool:
        """Whether this process is bound to the SMSC now (it may hold no bind slot)."""
        return self._session.bound

    @property
    def permitted(self) -> bool:
        """Whether this process holds one of the installation's bind slots (or needs none):
        without one, other processes send this connection's messages."""
        return self._session.permitted

    async def start(self) -> None:
        await self._session.start()

    async def close(self) -> None:
        await self._session.close()
        for task in list(self._background):
            task.cancel()
        if self._flusher is not None:
            if self._pending_reports:  # let what arrived be stored before the provider goes
                self._reports_waiting.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._drained(), 5)
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None

    # -- sending ---------------------------------------------------------------------------

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        session = await self._session.transmitter()
        return list(await asyncio.gather(*(self._send_one(session, sms) for sms in batch)))

    def _next_reference(self) -> int:
        self._reference = (self._reference + 1) % 256
        return self._reference

    async def _send_one(self, session: smpp34.Smsc, sms: OutboundSms) -> SendResult:
        s = self.settings
        try:
            submits = codec.build_submits(
                sms,
                sender=sms.sender or self.context.sender,
                registered_delivery=1 if (s.delivery_report and sms.delivery_report) else 0,
                data_coding=s.data_coding,
                gsm7_packed=s.gsm7_packed,
                long_messages=s.long_messages,
                reference=self._next_reference(),
            )
        except ValueError as exc:
            error = PermanentError(f"The text cannot be encoded for SMPP: {exc}", code="encoding")
            return SendResult(sms.message_id, error=error, raw_code=error.code)
        outcomes = await asyncio.gather(*(self._session.submit(session, sm) for sm in submits))
        errors = [o for o in outcomes if isinstance(o, ProviderError)]
        if errors:
            failure: ProviderError = next(
                (e for e in errors if isinstance(e, PermanentError)), errors[0]
            )
            if failure.not_taken and len(errors) < len(outcomes):
                failure = _partly_taken(failure)
            return SendResult(sms.message_id, error=failure, raw_code=failure.code)
        ids = [o for o in outcomes if isinstance(o, str)]
        self._receipts.track(ids)
        return SendResult(sms.message_id, ids[0], raw_code="0")

    # -- receiving -------------------------------------------------------------------------

    async def _on_deliver(self, event: smpp34.DeliverSmEvent) -> None:
        tlvs = [(t.tag, t.value) for t in event.tlvs]
        if codec.is_receipt(event.esm_class):
            try:
                report = codec.parse_receipt(event.short_message, tlvs, time.time())
            except ValueError as exc:
                log.warning("malformed SMPP delivery receipt kept as unmatched: %s", exc)
                raw = event.short_message.hex()[:60] or "empty"
                await self._reports(
                    [StatusReport(f"malformed:{raw}", Status.SENT, "malformed", str(exc))]
                )
                return
            await self._match(report, waited=0)
            return
        part = codec.parse_mo(
            event.source_addr,
            event.destination_addr,
            event.short_message,
            event.data_coding,
            event.esm_class,
            tlvs,
        )
        sms = self._inbound(part)
        if sms is not None and self.context.on_inbound is not None:
            await self.context.on_inbound([sms])

    async def _match(self, report: StatusReport, *, waited: int) -> None:
        """Apply a receipt to the one message it names; one that could name two is kept aside.

        A receipt first waits once for its submit_sm answer, which it may overtake; one that
        two messages could own waits longer while `auto` learns how the SMSC writes ids.
        """
        found = self._receipts.find(report)
        if found.tracked is not None and found.certain:
            await self._settle(found.tracked, report)
            return
        if waited == 0 or (found.ambiguous and waited < AMBIGUOUS_WAITS):
            self._later(self._match_later(report, waited + 1))
            return
        if found.ambiguous:
            log.warning(
                "SMPP receipt id %s could be two messages' (hex or decimal); kept as unmatched. "
                "Set smpp.receipt_id_base to how this SMSC writes receipt ids.",
                report.provider_message_id,
            )
            kept = f"ambiguous:{report.provider_message_id}"  # matches no message's id
            await self._reports([dataclasses.replace(report, provider_message_id=kept)])
        elif found.tracked is None:
            await self._reports([report])
        else:
            if found.reading is not None and waited == 1:
                self._receipts.vote(found.reading)  # only one reading names a message
            await self._settle(found.tracked, report)

    async def _settle(self, tracked: Tracked, report: StatusReport) -> None:
        settled = PartReceipts.conclude(tracked, report)
        if settled is not None:
            await self._reports([settled])

    async def _match_later(self, report: StatusReport, waited: int) -> None:
        await asyncio.sleep(MATCH_RETRY_DELAY)
        await self._match(report, waited=waited)

    def _later(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reports(self, reports: list[StatusReport]) -> None:
        """Queue reports for the flusher: the session reader must not wait on the database.

        An SMSC waits for deliver_sm_resp only so long; a reader that committed each receipt
        before reading the next fell behind under load and the SMSC gave up on receipts.
        """
        if self.context.on_reports is None:
            log.info("SMPP receipts dropped: no report handler (%d)", len(reports))
            return
        self._pending_reports.extend(reports)
        self._reports_waiting.set()
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_reports(), name="smpp-reports")

    async def _drained(self) -> None:
        while self._pending_reports or self._reports_waiting.is_set() or self._storing:
            await asyncio.sleep(0.01)

    async def _flush_reports(self) -> None:
        """Store queued reports in batches, one transaction for all that arrived meanwhile."""
        assert self.context.on_reports is not None
        while True:
            await self._reports_waiting.wait()
            self._reports_waiting.clear()
            batch, self._pending_reports = self._pending_reports, []
            if not batch:
                continue
            self._storing = True
            try:
                await self.context.on_reports(batch)
            except Exception:
                log.exception("storing %d SMPP receipts failed; keeping them", len(batch))
                self._pending_reports[:0] = batch
                await asyncio.sleep(1.0)
                self._reports_waiting.set()
            finally:
                self._storing = False

    def _inbound(self, part: codec.MoPart) -> InboundSms | None:
        """An MO message, or None while parts of a concatenated one are still missing."""
        text = part.text
        if part.is_partial and part.concat is not None:
            ref, total, seq = part.concat
            key = (part.sender, part.recipient, ref, total)
            now = time.monotonic()
            for stale in [
                k for k, a in self._assemblies.items() if now - a.started > ASSEMBLY_TIMEOUT
            ]:
                log.warning("SMPP: incomplete concatenated MO from %s dropped", stale[0])
                del self._assemblies[stale]
            assembly = self._assemblies.setdefault(key, _Assembly({}, total, now))
            assembly.parts[seq] = text
            if len(assembly.parts) < total:
                return None
            del self._assemblies[key]
            text = codec.join_parts(assembly.parts)
        sender = codec.phone_number(part.sender)
        return InboundSms(f"smpp:{uuid.uuid4().hex}", sender, part.recipient, text, time.time())


def _partly_taken(error: ProviderError) -> ProviderError:
    """The error of a message the SMSC took some parts of: no longer certainly not taken."""
    partly = copy.copy(error)
    partly.not_taken = False
    return partly
