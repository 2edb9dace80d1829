"""Webhook subscriptions and their deliveries as operators manage them (API, CLI).

Input is checked here and secrets are sealed here; `store.webhooks` holds the SQL. Secrets are
stored encrypted with the installation's key; a generated secret is returned once,
by `create` (or `update(rotate_secret=True)`), and never shown, listed or logged afterwards.
Deliveries are never deleted: delivered and dead ones stay listable, and replaying one queues
a new delivery of the same event (same event id, same body) with a fresh 24-hour window.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import Connection, Row
from sqlalchemy.engine import Engine

from smsdesk.crypto import SecretBox
from smsdesk.domain.errors import DomainError
from smsdesk.domain.ids import new_id
from smsdesk.domain.times import iso
from smsdesk.domain.webhook_settings import Network
from smsdesk.events import EVENT_TYPES
from smsdesk.store import webhooks as store
from smsdesk.store.db import write_transaction
from smsdesk.store.webhooks import DELIVERY_STATUSES, PENDING, delivery_row
from smsdesk.webhooks_out.destinations import Resolver, check_url, resolve_host

PING = "ping"
MIN_SECRET_LENGTH = 16


class NotFound(LookupError):
    """No subscription or delivery with that id."""


class ReplayRefused(Exception):
    """A delivery that cannot be replayed now (still pending, or nowhere to send it)."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription as shown to operators: everything except the secret."""

    id: str
    url: str
    events: tuple[str, ...]
    description: str
    active: bool
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> Subscription:
        events = tuple(e for e in row.events.split(",") if e)
        return cls(row.id, row.url, events, row.description, row.active, row.created_at)


def validate_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DomainError(
            f"'{url}' is not a webhook URL: give an http:// or https:// URL with a host name, "
            "e.g. https://crm.example.com/smsdesk-events",
            field="url",
        )
    if len(url) > 2000:
        raise DomainError("The URL is longer than 2,000 characters.", field="url")
    return url


def validate_events(events: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(e.strip() for e in events if e.strip()))
    valid = ", ".join(EVENT_TYPES)
    if not chosen:
        raise DomainError(f"Choose at least one event type: {valid}.", field="events")
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown:
        raise DomainError(
            f"Unknown event type(s): {', '.join(unknown)}. Valid types: {valid}.", field="events"
        )
    return chosen


def validate_secret(secret: str) -> str:
    if len(secret) < MIN_SECRET_LENGTH or len(secret) > 200:
        raise DomainError(
            f"A webhook secret must be {MIN_SECRET_LENGTH} to 200 characters long "
            "(leave it out to have one generated).",
            field="secret",
        )
    return secret


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def envelope(event_id: str, event_type: str, now: float, data: dict[str, Any]) -> str:
    """The exact JSON body every delivery of one event carries."""
    body = {"id": event_id, "type": event_type, "created_at": iso(now), "data": data}
    return orjson.dumps(body).decode()


class WebhookStore:
    """Subscriptions (create, list, change, delete) and deliveries (list, replay, ping).

    `on_change` runs after a subscription changed (the hub drops its cache); `on_queued` after
    a delivery was queued here (the deliverer is woken). A URL must pass `destinations`, with
    the private networks `allowed` returns and host names looked up with `resolve`.
    """

    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        clock: Callable[[], float],
        *,
        on_change: Callable[[], None] = lambda: None,
        on_queued: Callable[[], None] = lambda: None,
        allowed: Callable[[], Sequence[Network]] = tuple,
        resolve: Resolver = resolve_host,
    ) -> None:
        self.engine = engine
        self.box = box
        self.clock = clock
        self.on_change = on_change
        self.on_queued = on_queued
        self.allowed = allowed
        self.resolve = resolve

    def checked_url(self, url: str) -> str:
        """`url` if webhooks may be sent to it (its shape, then every address it names)."""
        url = validate_url(url)
        check_url(url, self.allowed(), self.resolve)
        return url

    def create(
        self,
        url: str,
        events: Iterable[str],
        description: str = "",
        secret: str | None = None,
    ) -> tuple[Subscription, str | None]:
        """A new active subscription, and its secret if one was generated (shown only now)."""
        generated = new_secret() if secret is None else None
        subscription = Subscription(
            new_id(),
            self.checked_url(url),
            validate_events(events),
            description[:200],
            True,
            self.clock(),
        )
        sealed = self.box.encrypt(generated or validate_secret(secret or ""))
        with write_transaction(self.engine) as conn, conn.begin():
            store.insert_subscription(
                conn,
                {
                    "id": subscription.id,
                    "url": subscription.url,
                    "secret": sealed,
                    "events": ",".join(subscription.events),
                    "description": subscription.description,
                    "active": True,
                    "created_at": subscription.created_at,
                },
            )
        self.on_change()
        return subscription, generated

    def all(self) -> list[Subscription]:
        with self.engine.connect() as conn:
            rows = store.all_subscriptions(conn)
        return [Subscription.from_row(row) for row in rows]

    def get(self, subscription_id: str) -> Subscription:
        with self.engine.connect() as conn:
            row = store.get_subscription(conn, subscription_id)
        if row is None:
            raise NotFound(f"There is no webhook subscription with id '{subscription_id}'.")
        return Subscription.from_row(row)

    def update(
        self,
        subscription_id: str,
        *,
        url: str | None = None,
        events: Iterable[str] | None = None,
        description: str | None = None,
        active: bool | None = None,
        secret: str | None = None,
        rotate_secret: bool = False,
    ) -> tuple[Subscription, str | None]:
        """Change the given fields; a rotated secret is returned (shown only now)."""
        values: dict[str, Any] = {}
        if url is not None:
            values["url"] = self.checked_url(url)
        if events is not None:
            values["events"] = ",".join(validate_events(events))
        if description is not None:
            values["description"] = description[:200]
        if active is not None:
            values["active"] = active
        generated = new_secret() if rotate_secret else None
        if generated or secret is not None:
            values["secret"] = self.box.encrypt(generated or validate_secret(secret or ""))
        if values:
            with write_transaction(self.engine) as conn, conn.begin():
                done = store.update_subscription(conn, subscription_id, values)
            if not done:
                raise NotFound(f"There is no webhook subscription with id '{subscription_id}'.")
            self.on_change()
        return self.get(subscription_id), generated

    def delete(self, subscription_id: str) -> None:
        """Remove a subscription; its pending deliveries become dead, the others stay listed."""
        with write_transaction(self.engine) as conn, conn.begin():
            done = store.delete_subscription(conn, subscription_id)
        if not done:
            raise NotFound(f"There is no webhook subscription with id '{subscription_id}'.")
        self.on_change()

    def deliveries(
        self,
        *,
        subscription_id: str | None = None,
        status: str | None = None,
        before_id: str | None = None,
        limit: int = 50,
    ) -> list[Row[Any]]:
        """Newest first, paged by id; `status` is pending, delivered or dead."""
        if status is not None and status not in DELIVERY_STATUSES:
            raise DomainError(
                f"Unknown delivery status '{status}'; use one of {', '.join(DELIVERY_STATUSES)}.",
                field="status",
            )
        with self.engine.connect() as conn:
            return store.list_deliveries(
                conn,
                subscription_id=subscription_id,
                status=status,
                before_id=before_id,
                limit=limit,
            )

    def replay(self, delivery_id: str) -> Row[Any]:
        """Queue a delivered or dead delivery's event again, as a new pending delivery."""
        with write_transaction(self.engine) as conn, conn.begin():
            old = store.get_delivery(conn, delivery_id)
            if old is None:
                raise NotFound(f"There is no webhook delivery with id '{delivery_id}'.")
            if old.status == PENDING:
                raise ReplayRefused(
                    "This delivery is still pending: it will be tried again at "
                    f"{iso(old.next_attempt_at)}."
                )
            try:
                self._require_active(conn, old.subscription_id)
            except NotFound:
                raise ReplayRefused(
                    f"The delivery's webhook subscription '{old.subscription_id}' was deleted."
                ) from None
            row = delivery_row(
                old.subscription_id, old.event_type, old.event_id, old.payload, self.clock()
            )
            store.insert_deliveries(conn, [row])
            new = store.get_delivery(conn, row["id"])
        self.on_queued()
        assert new is not None
        return new

    def ping(self, subscription_id: str) -> Row[Any]:
        """Queue a test event ('ping') to one subscription, whatever event types it chose."""
        now = self.clock()
        event_id = new_id()
        data = {"subscription_id": subscription_id, "message": "smsdesk test event"}
        with write_transaction(self.engine) as conn, conn.begin():
            self._require_active(conn, subscription_id)
            row = delivery_row(
                subscription_id, PING, event_id, envelope(event_id, PING, now, data), now
            )
            store.insert_deliveries(conn, [row])
            new = store.get_delivery(conn, row["id"])
        self.on_queued()
        assert new is not None
        return new

    @staticmethod
    def _require_active(conn: Connection, subscription_id: str) -> None:
        active = store.subscription_active(conn, subscription_id)
        if active is None:
            raise NotFound(f"There is no webhook subscription with id '{subscription_id}'.")
        if not active:
            raise ReplayRefused(
                f"The webhook subscription '{subscription_id}' is deactivated; activate it first."
            )
