"""Send test: one SMS sent at once, with the configuration as entered (saved or not).

Shared by the REST API, the CLI-facing API and the SMS configuration screen. The message is
stored (marked as a test) before it goes out, so its delivery report is matched and shown like
any other; it is never retried: the administrator wants the provider's verdict now.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine

from smsdesk import metrics
from smsdesk.domain.audit import Actor
from smsdesk.domain.connections import Connection
from smsdesk.domain.errors import DomainError
from smsdesk.domain.message import Status
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.events import EventSink
from smsdesk.outbox.accept import NewMessage, prepare_message, route_columns
from smsdesk.outbox.dispatcher import callback_url, outcome_for, send_batch, status_url
from smsdesk.outbox.pool import ProviderPool
from smsdesk.outbox.retry import RetryPolicy
from smsdesk.outbox.routing import explicit_plan
from smsdesk.providers.base import Provider, ProviderError
from smsdesk.store import messages as repo
from smsdesk.store.audit import AuditTrail
from smsdesk.store.writer import Writer


class NotReady(RuntimeError):
    """The service has no provider pool yet (it is starting)."""


class _Leases(Protocol):
    @property
    def lease_seconds(self) -> float: ...


class _CallbackSecret(Protocol):
    def callback_secret(self) -> str: ...


class SendTestHost(Protocol):
    """What a send test needs of the running process; the service is one."""

    @property
    def clock(self) -> Callable[[], float]: ...
    @property
    def config(self) -> _Leases: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def writer(self) -> Writer: ...
    @property
    def pool(self) -> ProviderPool | None: ...
    @property
    def settings(self) -> _CallbackSecret: ...
    @property
    def public_url(self) -> str: ...
    @property
    def events(self) -> EventSink: ...
    @property
    def trail(self) -> AuditTrail: ...

    def linger(self, provider: Provider) -> None:
        """Close `provider` once its pending callbacks have been made."""


@dataclass(frozen=True, slots=True)
class TestOutcome:
    message: Any  # the stored row after the attempt
    accepted: bool
    error: ProviderError | None
    elapsed_ms: float


async def send_test(
    service: SendTestHost,
    config: SmsConfiguration,
    to: str,
    text: str,
    actor: Actor | None = None,
    connection: Connection | None = None,
) -> TestOutcome:
    """Send one test SMS through `config`'s module, or through `connection` (turned off or
    not, its route and circuit breaker aside); raises DomainError for invalid input.

    With an `actor`, the send is written to the audit trail with the message (its id and
    module; the number and text stay in the message, which retention and erasure can remove).
    """
    now = service.clock()
    row = prepare_message(NewMessage(to=to, text=text), config, now, is_test=True)
    if connection is not None:
        plan = explicit_plan(connection, row["sender"])
        row.update(route_columns(plan, row["country"], None), module=connection.module)
    owner = f"test:{row['id']}"
    row.update(
        status=Status.SENDING.value,
        attempts=1,
        lease_owner=owner,
        lease_until=now + service.config.lease_seconds,
    )
    try:
        target = connection or row["module"]
        provider = service.pool.build(target, config) if service.pool else None
    except LookupError as exc:
        raise DomainError(str(exc), field="module") from None
    if provider is None:
        raise NotReady("The service is starting; try again in a moment.")
    if actor is not None:  # the key is fetched before the write transaction that needs it
        await asyncio.to_thread(lambda: service.trail.key)

    def insert(conn: Any) -> None:
        repo.insert_messages(conn, [row], "test")
        if actor is not None:
            service.trail.record(
                conn,
                actor,
                "message.test_sent",
                target_kind="message",
                target_id=row["id"],
                details={"module": row["module"], "connection": row["connection_id"]},
            )

    await service.writer.run(insert)
    secret = await asyncio.to_thread(service.settings.callback_secret)
    if connection is not None:
        url = status_url(service.public_url, connection, secret)
    else:
        url = callback_url(service.public_url, row["module"], "status", secret)
    with service.engine.connect() as conn:
        stored_row = repo.get_message(conn, row["id"])
    assert stored_row is not None  # committed just above
    started = time.perf_counter()
    try:
        await provider.start()
        result = (await send_batch(provider, [stored_row], url))[0]
    finally:
        service.linger(provider)
    outcome = outcome_for(
        stored_row, result, service.clock(), RetryPolicy(), random.Random(), retry=False
    )
    recorded = await service.writer.run(
        lambda c: repo.record_send_outcomes(c, owner, [outcome], service.clock(), service.events)
    )
    metrics.count_recorded(row["module"], recorded)
    with service.engine.connect() as conn:
        final = repo.get_message(conn, row["id"])
    return TestOutcome(
        message=final,
        accepted=result.accepted,
        error=result.error,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
    )
