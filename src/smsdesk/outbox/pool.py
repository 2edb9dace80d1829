"""Provider instances per connection, rebuilt when that connection's settings change.

A connection is a module with settings of its own (`domain/connections.py`). A module named
without a connection (a per-message `module=` override whose module has no connection) is
served by its implicit stand-in, `module:<name>`, with the settings parked for that module in
the SMS configuration, as before connections existed.

An SMPP connection's provider started for sending binds only while it holds one of the
installation's bind slots (`bind_permits`, see `outbox/bind_slots.py`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from smsdesk import metrics
from smsdesk.domain.connections import DEFAULT_ID, Connection
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.domain.sms import InboundSms, StatusReport
from smsdesk.events import EventSink
from smsdesk.providers.base import Provider, ProviderContext
from smsdesk.providers.registry import get_module
from smsdesk.providers.smpp.provider import SmppProvider
from smsdesk.providers.smpp.session import BindPermit
from smsdesk.sms_configuration import connection_settings, implicit_connection, module_settings
from smsdesk.store import reports as repo
from smsdesk.store.inbound import store_inbound
from smsdesk.store.writer import Writer

log = logging.getLogger(__name__)


def default_of(connections: Iterable[Connection], config: SmsConfiguration) -> Connection:
    """The default connection (before any is stored: the selected module's settings)."""
    limits = config.limits_for(config.module)
    for connection in connections:
        if connection.is_default:
            if connection.module != config.module:
                return connection
            # A loaded configuration shows the default connection's own fields; an unsaved one
            # (Send test before saving) carries the fields to try.
            return dataclasses.replace(
                connection,
                settings=dict(config.module_settings.get(config.module, connection.settings)),
                rate_limit=limits.rate_limit,
                concurrency=limits.concurrency,
            )
    return Connection(
        id=DEFAULT_ID,
        name=DEFAULT_ID,
        module=config.module,
        settings=dict(config.module_settings.get(config.module, {})),
        rate_limit=limits.rate_limit,
        concurrency=limits.concurrency,
        is_default=True,
    )


def for_module(
    module: str, connections: Iterable[Connection], config: SmsConfiguration
) -> Connection:
    """The connection a module's name stands for: the default if it is of that module, else
    the first enabled connection of it, else the module's implicit stand-in."""
    stored = list(connections)
    default = default_of(stored, config)
    if default.module == module:
        return default
    for connection in stored:
        if connection.module == module and connection.enabled:
            return connection
    return implicit_connection(config, module)


def _plain(values: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [
        (k, v.get_secret_value() if hasattr(v, "get_secret_value") else v)
        for k, v in sorted(values.items())
    ]


class ProviderPool:
    """Hands out a started provider for a connection, matching its current settings."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        data_dir: Path,
        *,
        background: bool,
        public_url: str = "",
        writer: Writer | None = None,
        clock: Callable[[], float] = time.time,
        inbound_stored: Callable[[], None] | None = None,
        events: EventSink | None = None,
        connections: Callable[[], Sequence[Connection]] = tuple,
        bind_permits: Callable[[str, int], BindPermit] | None = None,
    ) -> None:
        self.http = http
        self.bind_permits = bind_permits
        # The stored connections, as the connection store has them (cached briefly there).
        self.connections = connections
        self.inbound_stored = inbound_stored
        self.events = events
        self.writer = writer
        self.clock = clock
        self.data_dir = data_dir
        self.public_url = public_url
        self.background = background
        self._providers: dict[str, tuple[str, Provider]] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    def _connection(self, target: Connection | str, config: SmsConfiguration) -> Connection:
        if isinstance(target, Connection):
            return target
        return for_module(target, self.connections(), config)

    def build(self, target: Connection | str, config: SmsConfiguration) -> Provider:
        """A fresh, unstarted provider (for a one-off use such as Send test).

        `target` is a connection, or a module name standing for one (see `for_module`).
        """
        connection = self._connection(target, config)
        module = connection.module
        info = get_module(module)
        if info.provider_class is None:
            raise LookupError(f"Module {info.title} cannot send in this version.")
        settings = connection_settings(connection)
        context = ProviderContext(
            data_dir=self.data_dir,
            sender=config.sender,
            public_url=self.public_url,
            email_settings=(
                module_settings(config, "email") if info.provider_class.uses_email_module else None
            ),
        )
        if self.writer is not None:
            context = dataclasses.replace(
                context,
                on_reports=functools.partial(self._store_reports, module),
                on_inbound=functools.partial(self._store_inbound, module, connection.id),
            )
        return info.provider_class(settings, self.http, context)

    async def _store_reports(self, module: str, reports: list[StatusReport]) -> None:
        """Reports a provider received over its own connection, applied like the webhook does."""
        assert self.writer is not None
        now = self.clock()
        tally = await self.writer.run(
            lambda c: repo.apply_reports(c, module, reports, now, events=self.events)
        )
        metrics.count_reports(module, tally)

    async def _store_inbound(
        self, module: str, connection_id: str, received: list[InboundSms]
    ) -> None:
        """Inbound SMS a provider received over its own connection, stored like the webhook does."""
        assert self.writer is not None
        await store_inbound(
            self.writer,
            module,
            received,
            self.clock(),
            stored=self.inbound_stored,
            connection_id=connection_id,
        )

    async def get(self, target: Connection | str, config: SmsConfiguration) -> Provider:
        """The started provider of a connection (or of the connection a module stands for)."""
        connection = self._connection(target, config)
        fingerprint = json.dumps(
            connection_settings(connection).model_dump(mode="json"), sort_keys=True
        )
        # SecretStr dumps as '**********', so a changed secret alone must also count.
        fingerprint += repr((connection.module, _plain(connection.settings)))
        provider_class = get_module(connection.module).provider_class
        if provider_class is not None and provider_class.uses_email_module:
            fingerprint += repr(_plain(config.module_settings.get("email", {})))
        async with self._lock:
            current = self._providers.get(connection.id)
            if current is not None and current[0] == fingerprint:
                return current[1]
            provider = self.build(connection, config)
            if self.background:
                if isinstance(provider, SmppProvider) and self.bind_permits is not None:
                    binds = provider.settings.binds
                    provider.use_bind_permit(self.bind_permits(connection.id, binds))
                await provider.start()
            self._providers[connection.id] = (fingerprint, provider)
        if current is not None:
            self._retire(current[1])
        return provider

    def _retire(self, provider: Provider) -> None:
        """Close a replaced provider in the background. Its close may wait for a callback it
        is posting to this very service, and the caller may be that callback's request (the
        webhooks ask here for the provider): awaiting it would leave both waiting."""
        task = asyncio.get_running_loop().create_task(self._close_quietly(provider))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    @staticmethod
    async def _close_quietly(provider: Provider) -> None:
        try:
            await provider.close()
        except Exception:
            log.exception("closing a provider failed")

    def may_send(self, target: Connection | str, config: SmsConfiguration) -> bool:
        """False while this process's provider of an SMPP connection waits for a bind slot:
        the processes holding the slots send that connection's messages. A connection with no
        provider started yet is not started here (a module nobody uses opens no session)."""
        held = self._providers.get(self._connection(target, config).id)
        return held is None or not isinstance(held[1], SmppProvider) or held[1].permitted

    async def close(self) -> None:
        async with self._lock:
            providers = [p for _, p in self._providers.values()]
            self._providers.clear()
        for provider in providers:
            await self._close_quietly(provider)
        if self._retiring:
            await asyncio.wait(set(self._retiring))
