"""The background task that sends queued notifications: e-mail through the SMTP server of the
SMS configuration, SMS to the agent's own number through the outbox.

Notifications are leased (`lease_until`) while they are sent, so several processes on one
database never send one twice. A failure is tried again later (`retry.py`) and, after the last
attempt, the notification is dead with its error kept. An SMS notification is queued in the
outbox as transactional (an agent's own number is never refused as opted out), with the
reference `notification:<id>`, and the outbox sends it like any other message. Sent and dead
notifications are deleted after 30 days.

The sender is woken when this process queues a notification (`events.listen`); it polls every
`poll_interval` seconds (5 by default) only for those queued by other processes and for
retries that fall due.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import Connection

from smsdesk.domain.errors import DomainError
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.notify.events import listen
from smsdesk.notify.mailer import MailFailed, send_email
from smsdesk.notify.messages import with_links
from smsdesk.notify.retry import NotifyPolicy, next_attempt_at
from smsdesk.scan_loop import ScanLoop, cancel_and_wait
from smsdesk.store import messages as outbox_store
from smsdesk.store import notifications as store
from smsdesk.store.writer import Writer

log = logging.getLogger(__name__)
KEEP_SECONDS = 30 * 86400  # sent and dead notifications are kept this long
PURGE_EVERY = 3600.0
POLL_SECONDS = 5.0  # for notifications queued by other processes, and retries falling due

# An SMS to the agent's number, checked as the outbox checks every SMS: (number, text,
# configuration, now, reference) -> the message row. The service hands it in.
SmsRow = Callable[[str, str, SmsConfiguration, float, str], dict[str, Any]]


class SettingsSource(Protocol):
    def load(self) -> SmsConfiguration: ...


class NotificationSender(ScanLoop):
    """One process's notification loop; several may run against one database."""

    scan_failed = "notification scan failed; trying again"
    scan_log = log

    def __init__(
        self,
        *,
        writer: Writer,
        settings: SettingsSource,
        sms_row: SmsRow,
        public_url: Callable[[], str],
        on_outbound: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        policy: NotifyPolicy = NotifyPolicy(),
        poll_interval: float = POLL_SECONDS,
        lease_seconds: float = 120.0,
        concurrency: int = 4,
    ) -> None:
        self.writer = writer
        self.settings = settings
        self.sms_row = sms_row
        self.public_url = public_url
        self.on_outbound = on_outbound
        self.clock = clock
        self.policy = policy
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._unlisten: Callable[[], None] | None = None
        self._purged_at = float("-inf")
        self.scans = 0
        self.attempts = 0  # attempts finished and recorded (for tests and metrics)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._unlisten = listen(self.writer.engine, self.wake)
        self._main = asyncio.create_task(self._scan_forever(), name="notification-sender")

    async def stop(self) -> None:
        """Stop at once: a notification being sent is tried again after its lease."""
        self._stopping = True
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._main is not None:
            await cancel_and_wait(self._main)
        self._main = None
        self._loop = None

    async def run_once(self) -> int:
        """Claim the due notifications, send them, record each outcome; how many were claimed."""
        now = self.clock()
        claimed = await self.writer.run(
            lambda c: store.claim_due(
                c, now=now, lease_until=now + self.lease_seconds, limit=self.concurrency
            )
        )
        self.scans += 1
        if now - self._purged_at >= PURGE_EVERY:
            self._purged_at = now
            before = now - KEEP_SECONDS
            await self.writer.run(lambda c: store.purge_finished(c, before))
        if claimed:
            config = self.settings.load()
            await asyncio.gather(*(self._guarded(item, config) for item in claimed))
        return len(claimed)

    async def _guarded(self, item: Any, config: SmsConfiguration) -> None:
        """Send one; a fault of ours is recorded as the attempt's error, never left leased."""
        try:
            await self._send(item, config)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("notification %s failed unexpectedly", item.id)
            await self._record(item, f"{type(exc).__name__}: {exc}", False, None)

    async def _send(self, item: Any, config: SmsConfiguration) -> None:
        error: str | None = None
        permanent = False
        sms: dict[str, Any] | None = None
        text = with_links(item.body, self.public_url())
        if item.channel == "email":
            if not item.email:
                error, permanent = "The user has no e-mail address any more.", True
            else:
                try:
                    await send_email(config.email, item.email, item.subject, text)
                except MailFailed as exc:
                    error = str(exc)
        elif not item.phone:
            error, permanent = "The user has no mobile number any more.", True
        else:
            reference = f"notification:{item.id}"
            try:
                sms = self.sms_row(item.phone, text, config, self.clock(), reference)
            except DomainError as exc:
                error, permanent = exc.message, True
        await self._record(item, error, permanent, sms)
        if sms is not None:
            self.on_outbound()

    async def _record(
        self, item: Any, error: str | None, permanent: bool, sms: dict[str, Any] | None
    ) -> None:
        """Record the attempt, in one transaction with the SMS it queued (if any)."""
        now = self.clock()
        attempts = item.attempts + 1
        retry_at = (
            None if permanent or error is None else next_attempt_at(attempts, now, self.policy)
        )
        if error is None:
            outcome = {"status": store.SENT, "next_attempt_at": now, "sent_at": now}
        elif retry_at is None:
            outcome = {"status": store.DEAD, "next_attempt_at": now, "sent_at": None}
        else:
            outcome = {"status": store.PENDING, "next_attempt_at": retry_at, "sent_at": None}
        outcome.update(nid=item.id, attempts=attempts, last_error=error)

        def write(conn: Connection) -> None:
            if sms is not None:
                outbox_store.insert_messages(conn, [sms], "notification")
            store.record_outcomes(conn, [outcome])

        await self.writer.run(write)
        self.attempts += 1
        log.log(
            logging.INFO if error is None else logging.WARNING,
            "notification %s",
            outcome["status"],
            extra={
                "notification_id": item.id,
                "channel": item.channel,
                "event": item.event,
                "attempts": attempts,
                "error": error,
            },
        )
