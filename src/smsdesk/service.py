"""One smsdesk process: database, writer, configuration, API keys, providers, dispatcher,
notifications to agents, and its part in the cluster (heartbeat, once-per-cluster jobs)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx

from smsdesk.cluster import Heartbeat, Leadership
from smsdesk.crypto import SecretBox, SecretKeyError
from smsdesk.domain.audit import Actor
from smsdesk.domain.connections import Connection
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.domain.webhook_settings import Network
from smsdesk.events import EventSink
from smsdesk.inbound.processor import InboundProcessor
from smsdesk.lifecycle.retention import RetentionJob
from smsdesk.live.feed import LiveFeed
from smsdesk.mailings.sender import MailingSender
from smsdesk.notify.events import listen as on_notifications_queued
from smsdesk.notify.sender import NotificationSender
from smsdesk.outbox.accept import NewMessage, prepare_message
from smsdesk.outbox.bind_slots import BindSlots
from smsdesk.outbox.dispatcher import Dispatcher
from smsdesk.outbox.optout_cache import OptOutCache
from smsdesk.outbox.pool import ProviderPool
from smsdesk.outbox.reconcile import Reconciler
from smsdesk.process_config import AppConfig
from smsdesk.providers.base import Provider
from smsdesk.providers.registry import get_module
from smsdesk.siblings import (
    WAKE_DISPATCHER,
    WAKE_INBOUND,
    WAKE_NOTIFICATIONS,
    WAKE_WEBHOOKS,
    ParentLink,
    SiblingProcesses,
)
from smsdesk.store import audit, db, hash_key, optouts, rate_limits, spend
from smsdesk.store import messages as repo
from smsdesk.store.apikeys import ApiKeyStore
from smsdesk.store.configuration import ConfigurationStore
from smsdesk.store.leadership import open_locks
from smsdesk.store.users import UserStore
from smsdesk.store.writer import Writer
from smsdesk.webhooks_out.deliverer import WebhookDeliverer
from smsdesk.webhooks_out.hub import WebhookHub


class Service:
    """Wires the parts together; the web app and the CLI both work through it."""

    def __init__(self, config: AppConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        config.data_dir.mkdir(parents=True, exist_ok=True)
        secret = config.secret_key.get_secret_value() if config.secret_key else None
        self.box = SecretBox.for_installation(config.data_dir, secret)
        self.engine = db.create_engine(
            config.effective_database_url, sqlite_synchronous=config.sqlite_synchronous
        )
        self.writer = Writer(self.engine)
        self._hash_key: bytes | None = None
        self.trail = audit.AuditTrail(lambda: self.hash_key, self.clock)
        self.settings = ConfigurationStore(
            self.engine, self.box, lambda name: get_module(name).settings_model, trail=self.trail
        )
        self.keys = ApiKeyStore(self.engine, clock=self.clock, trail=self.trail)
        self.users = UserStore(self.engine, trail=self.trail)
        self.opt_outs = OptOutCache(self.engine)
        optouts.use_hash_key(self.engine, lambda: self.hash_key)
        self._lingering: set[asyncio.Task[None]] = set()
        self.webhooks = WebhookHub(self.engine, self.box, self.clock, allowed=self.webhook_networks)
        self.events: EventSink = self.webhooks
        spend.report_alerts_to(self.engine, self.events)  # spend.threshold, where stored
        # The screens' live updates: polls the database only while a page is connected.
        self.live = LiveFeed(self.engine, self.writer, self.clock)
        self.deliverer: WebhookDeliverer | None = None
        self.owner = config.worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.public_url = config.effective_public_url()
        self.http: httpx.AsyncClient | None = None
        self.pool: ProviderPool | None = None
        self.dispatcher: Dispatcher | None = None
        self.reconciler: Reconciler | None = None
        self.inbound: InboundProcessor | None = None
        self.notifier: NotificationSender | None = None
        self.mailings: MailingSender | None = None
        self.retention = RetentionJob(self, owner=self.owner, hash_key=lambda: self.hash_key)
        self._retention_started = False
        self._own_http = False
        self.role = "api"  # api (web only), worker (dispatcher only) or both; set by start()
        self.leadership: Leadership | None = None
        self.leadership_interval = 2.0  # seconds between tries to take the jobs of a dead leader
        self.heartbeat: Heartbeat | None = None
        # `serve --processes N`: the first process holds the others; each other one holds its
        # link to the first, which runs the dispatcher and the jobs its wakes are for.
        self.siblings: SiblingProcesses | None = None
        self.parent_link: ParentLink | None = None
        self._unlisten_notifications: Callable[[], None] | None = None

    @property
    def hash_key(self) -> bytes:
        """The installation's key for keyed hashes (audit chain, erased numbers)."""
        if self._hash_key is None:
            self._hash_key = hash_key.load_or_create(self.engine, self.box)
        return self._hash_key

    def audit(
        self,
        actor: Actor,
        action: str,
        *,
        target_kind: str | None = None,
        target_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an action that has no transaction of its own (a login, an export)."""
        key = self.hash_key
        with db.write_transaction(self.engine) as conn, conn.begin():
            audit.append(
                conn,
                key,
                actor,
                action,
                self.clock(),
                target_kind=target_kind,
                target_id=target_id,
                details=details,
            )

    def webhook_networks(self) -> tuple[Network, ...]:
        """The private networks webhooks may reach (SMS configuration: webhooks.allow_private)."""
        return self.settings.load().webhooks.networks()

    def upgrade(self) -> None:
        db.upgrade(self.engine)
        # Loaded (or made) now, outside any transaction: audit entries are written inside the
        # write transactions of the changes they record, where making it would wait on itself.
        # A key that does not decrypt (a database restored without its secret key) is left for
        # the first audited action to report.
        with contextlib.suppress(SecretKeyError):
            _ = self.hash_key

    async def start(
        self,
        *,
        dispatcher: bool | None = None,
        http: httpx.AsyncClient | None = None,
        public_url: str | None = None,
        api: bool | None = None,
    ) -> None:
        """Start the writer and, if asked, the dispatcher (with its providers' background work).

        `api` says whether this process serves the web app (for its role in the cluster); by
        default it does when started without naming the dispatcher, as the web app starts it.
        """
        if public_url:
            self.public_url = public_url.rstrip("/")
        self.writer.start()
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))
        run_dispatcher = self.config.dispatcher if dispatcher is None else dispatcher
        serves_api = dispatcher is None if api is None else api
        self.role = "both" if serves_api and run_dispatcher else "api" if serves_api else "worker"
        self.pool = ProviderPool(
            self.http,
            self.config.data_dir,
            background=run_dispatcher,
            public_url=self.public_url,
            writer=self.writer,
            clock=self.clock,
            inbound_stored=self.wake_inbound,
            events=self.events,
            connections=self.stored_connections,
            bind_permits=self.bind_slots,
        )
        if run_dispatcher:
            self.leadership = Leadership(
                lambda: open_locks(self.engine, f"smsdesk {self.owner}"),
                owner=self.owner,
                interval=self.leadership_interval,
            )
            await self.leadership.start()
        self.heartbeat = Heartbeat(
            self.writer,
            owner=self.owner,
            role=self.role,
            jobs=lambda: self.leadership.held if self.leadership else (),
            clock=self.clock,
            limiter=lambda: rate_limits.limiter_state(self.engine, self.clock()),
        )
        await self.heartbeat.start()
        if self.leadership is not None:
            await self._start_background(self.leadership)
        elif self.parent_link is not None:
            link = self.parent_link
            self.webhooks.notify = lambda: link.send(WAKE_WEBHOOKS)
            self._unlisten_notifications = on_notifications_queued(
                self.engine, lambda: link.send(WAKE_NOTIFICATIONS)
            )
        if self.siblings is not None:
            await self.siblings.start(self._woken_by_sibling)

    def _woken_by_sibling(self, kind: bytes) -> None:
        """Another API process of this `serve` stored work for this process's background."""
        if kind == WAKE_DISPATCHER:
            self.wake_dispatcher()
        elif kind == WAKE_INBOUND:
            self.wake_inbound()
        elif kind == WAKE_WEBHOOKS and self.deliverer is not None:
            self.deliverer.wake()
        elif kind == WAKE_NOTIFICATIONS and self.notifier is not None:
            self.notifier.wake()

    async def _start_background(self, leadership: Leadership) -> None:
        """The dispatcher and the background jobs; the once-per-cluster ones run only while
        `leadership` says this process leads them, and start at once when it takes them."""
        assert self.pool is not None
        self.dispatcher = Dispatcher(
            writer=self.writer,
            store=self.settings,
            pool=self.pool,
            owner=self.owner,
            public_url=self.public_url,
            lease_seconds=self.config.lease_seconds,
            poll_interval=self.config.poll_interval,
            claim_batch=self.config.claim_batch,
            clock=self.clock,
            events=self.events,
        )
        await self.dispatcher.start()
        self.reconciler = Reconciler(
            writer=self.writer,
            store=self.settings,
            pool=self.pool,
            clock=self.clock,
            events=lambda: self.events,
            gate=leadership.gate("reconcile"),
        )
        await self.reconciler.start()
        # Webhooks go out from their own task and HTTP client, never the dispatcher's.
        self.deliverer = WebhookDeliverer(
            writer=self.writer,
            box=self.box,
            clock=self.clock,
            allowed=self.webhook_networks,
            gate=leadership.gate("webhook-retries"),
        )
        await self.deliverer.start()
        self.webhooks.notify = self.deliverer.wake
        self.inbound = InboundProcessor(
            writer=self.writer,
            settings=self.settings,
            events=lambda: self.events,
            clock=self.clock,
            reply=self.confirmation_sms,
            on_outbound=self.wake_dispatcher,
            gate=leadership.gate("inbound-recovery"),
        )
        await self.inbound.start()
        # Notifications to agents: e-mail over SMTP, SMS through the outbox.
        self.notifier = NotificationSender(
            writer=self.writer,
            settings=self.settings,
            sms_row=self.notification_sms,
            public_url=lambda: self.public_url,
            on_outbound=self.wake_dispatcher,
            clock=self.clock,
        )
        await self.notifier.start()
        # Mailings: batches of recipients queued into the outbox (safe in every process).
        self.mailings = MailingSender(self, poll_interval=max(self.config.poll_interval, 0.05))
        await self.mailings.start()
        await self.retention.start(leadership.gate("retention"))
        self._retention_started = True
        for job, wake in (
            ("reconcile", self.reconciler.wake),
            ("webhook-retries", self.deliverer.wake),
            ("inbound-recovery", self.inbound.wake),
            ("retention", self.retention.wake),
        ):
            leadership.gate(job).on_change(_when_taken(wake))

    def bind_slots(self, connection_id: str, count: int) -> BindSlots:
        """This process's claim on one of `count` SMPP bind slots of a connection."""
        name = f"smsdesk {self.owner} smpp {connection_id}"
        return BindSlots(lambda: open_locks(self.engine, name), connection_id, count)

    def stored_connections(self) -> tuple[Connection, ...]:
        """The connections stored in the database (the connection store caches them briefly)."""
        return self.settings.connections.all()

    def linger(self, provider: Provider, limit: float = 600.0) -> None:
        """Close `provider` once it has made its own pending callbacks (at most `limit` s).

        A Send test builds a provider of its own; the simulator delivers its reports from
        that instance, so closing it at once would leave the test message *sent* for good.
        """

        async def wait_then_close() -> None:
            deadline = time.monotonic() + limit
            try:
                while time.monotonic() < deadline and await provider.has_pending_callbacks():
                    await asyncio.sleep(0.2)
            finally:
                await provider.close()

        task = asyncio.get_running_loop().create_task(wait_then_close())
        self._lingering.add(task)
        task.add_done_callback(self._lingering.discard)

    async def stop(self) -> None:
        if self.siblings is not None:  # they finish their requests while the jobs still run
            await self.siblings.stop()
        if self._unlisten_notifications is not None:
            self._unlisten_notifications()
            self._unlisten_notifications = None
        await self.live.stop()  # open live streams end first, so servers can stop
        for task in list(self._lingering):
            task.cancel()
        for task in list(self._lingering):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._retention_started:
            await self.retention.stop()
            self._retention_started = False
        if self.inbound is not None:
            await self.inbound.stop()
            self.inbound = None
        if self.mailings is not None:
            await self.mailings.stop()
            self.mailings = None
        if self.notifier is not None:
            await self.notifier.stop()
            self.notifier = None
        if self.reconciler is not None:
            await self.reconciler.stop()
            self.reconciler = None
        if self.dispatcher is not None:
            await self.dispatcher.stop()
            self.dispatcher = None
        if self.deliverer is not None:
            self.webhooks.notify = None
            await self.deliverer.stop()
            self.deliverer = None
        if self.leadership is not None:  # after the jobs stopped: no run overlaps the next leader's
            await self.leadership.stop()
            self.leadership = None
        if self.heartbeat is not None:
            await self.heartbeat.stop()
            self.heartbeat = None
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
        if self.http is not None and self._own_http:
            await self.http.aclose()
        self.http = None
        self.writer.stop()

    def close(self) -> None:
        self.webhooks.close()
        db.close(self.engine)

    def wake_dispatcher(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()
        elif self.parent_link is not None:
            self.parent_link.send(WAKE_DISPATCHER)

    def confirmation_sms(
        self, number: str, text: str, config: SmsConfiguration, now: float
    ) -> dict[str, Any]:
        """An SMS confirming an opt-out or opt-in, checked as the outbox checks every SMS;
        transactional, so it reaches a number that just opted out (`inbound.pipeline`)."""
        return prepare_message(NewMessage(to=number, text=text), config, now, transactional=True)

    def notification_sms(
        self, number: str, text: str, config: SmsConfiguration, now: float, reference: str
    ) -> dict[str, Any]:
        """An SMS notifying an agent on their own number (`notify.sender`): transactional, and
        marked by its reference `notification:<id>`."""
        return prepare_message(
            NewMessage(to=number, text=text, reference=reference), config, now, transactional=True
        )

    def wake_inbound(self) -> None:
        """Inbound SMS were stored: process them now rather than at the next scan."""
        if self.inbound is not None:
            self.inbound.wake()
        elif self.parent_link is not None:
            self.parent_link.send(WAKE_INBOUND)

    def cluster_state(self) -> dict[str, Any]:
        """This process in the cluster: its role, the jobs it leads, the messages it holds."""
        return {
            "process": self.owner,
            "role": self.role,
            "leads": list(self.leadership.held) if self.leadership else [],
            "job_locks": self.leadership.kind if self.leadership else None,
            "leased_messages": self.heartbeat.leased if self.heartbeat else 0,
        }

    def queue_depth(self) -> dict[int, int]:
        with self.engine.connect() as conn:
            return repo.queue_depth(conn)


def _when_taken(wake: Callable[[], None]) -> Callable[[bool], None]:
    """A leadership listener that runs a job's loop at once when this process takes the job."""

    def changed(held: bool) -> None:
        if held:
            wake()

    return changed
