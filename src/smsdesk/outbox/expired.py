"""Messages whose dispatcher stopped holding them (it died, or froze past its lease).

Each goes out again only when nothing shows the provider took it (`store/lease_expiry.py`
looks for a kept-aside report naming it); a provider that can say what it took
(`supports_sent_lookup`) is asked first. If it cannot answer, the message goes out again:
nothing shows it was taken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from smsdesk.domain.connections import Connection as SmsConnection
from smsdesk.events import EventSink
from smsdesk.outbox.pool import ProviderPool
from smsdesk.outbox.targets import targets
from smsdesk.providers.registry import get_module
from smsdesk.store import lease_expiry
from smsdesk.store.configuration import ConfigurationStore
from smsdesk.store.writer import Writer

log = logging.getLogger(__name__)


def can_be_asked(connection: SmsConnection) -> bool:
    """Whether the connection's provider can say, by our id, whether it took a message."""
    provider_class = get_module(connection.module).provider_class
    return provider_class is not None and provider_class.supports_sent_lookup


async def release_expired(
    writer: Writer,
    store: ConfigurationStore,
    pool: ProviderPool,
    *,
    owner: str,
    now: float,
    lease_seconds: float,
    clock: Callable[[], float],
    events: EventSink | None,
) -> lease_expiry.Released:
    """Settle, queue again or ask about every message whose lease ran out."""
    config = await store.current()
    askable = {
        target.connection.id: target.connection
        for target in targets(config, pool.connections())
        if can_be_asked(target.connection)
    }
    released = await writer.run(
        lambda c: lease_expiry.release_expired(
            c, now, askable=askable, owner=owner, lease_until=now + lease_seconds, events=events
        )
    )
    if released.proven or released.requeued:
        log.warning(
            "leases ran out: %d messages shown sent by a report, %d queued again",
            released.proven,
            released.requeued,
        )
    by_connection: dict[str, list[str]] = {}
    for row in released.to_ask:
        by_connection.setdefault(row.connection_id, []).append(row.id)
    for connection_id, ids in by_connection.items():
        await _ask(writer, store, pool, askable[connection_id], ids, owner, clock, events)
    return released


async def _ask(
    writer: Writer,
    store: ConfigurationStore,
    pool: ProviderPool,
    connection: SmsConnection,
    ids: list[str],
    owner: str,
    clock: Callable[[], float],
    events: EventSink | None,
) -> None:
    try:
        provider = await pool.get(connection, await store.current())
        taken = await provider.find_sent(ids)
    except Exception:
        log.warning(
            "could not ask the provider what it took; sending again",
            extra={"connection": connection.id},
            exc_info=True,
        )
        taken = {}
    unknown = [i for i in ids if i not in taken]
    now = clock()
    settled = await writer.run(
        lambda c: lease_expiry.settle_asked(c, owner, taken, unknown, now, events)
    )
    if settled.proven:
        log.warning(
            "leases ran out: %d messages the provider says it took were not sent again",
            settled.proven,
            extra={"connection": connection.id},
        )
