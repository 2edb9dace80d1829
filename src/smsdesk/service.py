"""One smsdesk process: database, writer, configuration, API keys, providers, dispatcher."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import httpx

from smsdesk.config import AppConfig
from smsdesk.crypto import SecretBox, load_or_create_key
from smsdesk.events import EventSink, NoEvents
from smsdesk.outbox.dispatcher import Dispatcher
from smsdesk.outbox.pool import ProviderPool
from smsdesk.store import db
from smsdesk.store import messages as repo
from smsdesk.store.apikeys import ApiKeyStore
from smsdesk.store.configuration import ConfigurationStore
from smsdesk.store.writer import Writer


class Service:
    """Wires the parts together; the web app and the CLI both work through it."""

    def __init__(self, config: AppConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        config.data_dir.mkdir(parents=True, exist_ok=True)
        secret = config.secret_key.get_secret_value() if config.secret_key else None
        self.box = SecretBox(load_or_create_key(config.data_dir, secret))
        self.engine = db.create_engine(config.effective_database_url)
        self.writer = Writer(self.engine)
        self.settings = ConfigurationStore(self.engine, self.box)
        self.keys = ApiKeyStore(self.engine)
        self.events: EventSink = NoEvents()
        self.owner = config.worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.public_url = config.effective_public_url()
        self.http: httpx.AsyncClient | None = None
        self.pool: ProviderPool | None = None
        self.dispatcher: Dispatcher | None = None
        self._own_http = False

    def upgrade(self) -> None:
        db.upgrade(self.engine)

    async def start(
        self,
        *,
        dispatcher: bool | None = None,
        http: httpx.AsyncClient | None = None,
        public_url: str | None = None,
    ) -> None:
        """Start the writer and, if asked, the dispatcher (with its providers' background work)."""
        if public_url:
            self.public_url = public_url.rstrip("/")
        self.writer.start()
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))
        run_dispatcher = self.config.dispatcher if dispatcher is None else dispatcher
        self.pool = ProviderPool(
            self.http,
            self.config.data_dir,
            background=run_dispatcher,
            public_url=self.public_url,
            writer=self.writer,
            clock=self.clock,
        )
        if run_dispatcher:
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
            )
            await self.dispatcher.start()

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
            self.dispatcher = None
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
        if self.http is not None and self._own_http:
            await self.http.aclose()
        self.http = None
        self.writer.stop()

    def close(self) -> None:
        self.engine.dispose()

    def wake_dispatcher(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def queue_depth(self) -> dict[int, int]:
        with self.engine.connect() as conn:
            return repo.queue_depth(conn)
