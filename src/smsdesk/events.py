"""Events other systems can subscribe to, and the interface that records them.

An event is recorded inside the database transaction that caused it, so it exists exactly
when the change does: a crash never loses one and never invents one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Connection

INBOUND_RECEIVED = "inbound.received"
REQUEST_CREATED = "request.created"
MESSAGE_STATUS = "message.status"
OPT_OUT_CHANGED = "optout.changed"
CONNECTION_HEALTH = "connection.health"  # a connection's circuit opened, half-opened or closed
SPEND_THRESHOLD = "spend.threshold"  # a daily spend cap reached its alert percentage
MAILING_STATUS = "mailing.status"  # a mailing was scheduled, started, paused, resumed, finished...
EVENT_TYPES = (
    INBOUND_RECEIVED,
    REQUEST_CREATED,
    MESSAGE_STATUS,
    OPT_OUT_CHANGED,
    CONNECTION_HEALTH,
    SPEND_THRESHOLD,
    MAILING_STATUS,
)


class EventSink(Protocol):
    def emit(self, conn: Connection, event_type: str, payloads: Sequence[dict[str, Any]]) -> None:
        """Record one event per payload in `conn`'s transaction, for every subscriber."""


class NoEvents:
    """A sink that records nothing (no subscribers)."""

    def emit(self, conn: Connection, event_type: str, payloads: Sequence[dict[str, Any]]) -> None:
        return None
