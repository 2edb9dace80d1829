"""Provider instances per module, rebuilt when that module's settings change."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from smsdesk import metrics
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.domain.sms import InboundSms, StatusReport
from smsdesk.events import EventSink
from smsdesk.providers.base import Provider, ProviderContext
from smsdesk.providers.registry import get_module
from smsdesk.sms_configuration import module_settings
from smsdesk.store import reports as repo
from smsdesk.store.inbound import store_inbound
from smsdesk.store.writer import Writer

log = logging.getLogger(__name__)


class ProviderPool:
    """Hands out a started provider for a module, matching the current configuration."""

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
    ) -> None:
        self.http = http
        self.inbound_stored = inbound_stored
        self.events = events
        self.writer = writer
        self.clock = clock
        self.data_dir = data_dir
        self.public_url = public_url
        self.background = background
        self._providers: dict[str, tuple[str, Provider]] = {}
        self._lock = asyncio.Lock()

    def build(self, module: str, config: SmsConfiguration) -> Provider:
        """A fresh, unstarted provider (for a one-off use such as Send test)."""
        info = get_module(module)
        if info.provider_class is None:
            raise LookupError(f"Module {info.title} cannot send in this version.")
        settings = module_settings(config, module)
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
                on_inbound=functools.partial(self._store_inbound, module),
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

    async def _store_inbound(self, module: str, received: list[InboundSms]) -> None:
        """Inbound SMS a provider received over its own connection, stored like the webhook does."""
        assert self.writer is not None
        await store_inbound(self.writer, module, received, self.clock(), stored=self.inbound_stored)

    async def get(self, module: str, config: SmsConfiguration) -> Provider:
        fingerprint = json.dumps(
            module_settings(config, module).model_dump(mode="json"), sort_keys=True
        )
        # SecretStr dumps as '**********', so a changed secret alone must also count.
        fingerprint += repr(
            [
                v.get_secret_value() if hasattr(v, "get_secret_value") else v
                for v in config.module_settings.get(module, {}).values()
            ]
        )
        provider_class = get_module(module).provider_class
        if provider_class is not None and provider_class.uses_email_module:
            fingerprint += repr(
                [
                    (k, v.get_secret_value() if hasattr(v, "get_secret_value") else v)
                    for k, v in sorted(config.module_settings.get("email", {}).items())
                ]
            )
        async with self._lock:
            current = self._providers.get(module)
            if current is not None and current[0] == fingerprint:
                return current[1]
            provider = self.build(module, config)
            if self.background:
                await provider.start()
            self._providers[module] = (fingerprint, provider)
        if current is not None:
            await current[1].close()
        return provider

    async def close(self) -> None:
        async with self._lock:
            providers = [p for _, p in self._providers.values()]
            self._providers.clear()
        for provider in providers:
            try:
                await provider.close()
            except Exception:
                log.exception("closing a provider failed")
