"""Queueing notifications when something happens to a request.

`queue_for_event` runs in the transaction of the change: it finds the users the event concerns
(one query, which is all it costs when nobody is to be told), leaves out the one who acted, reads
each user's choices (`users.notify`: event -> channels) and stores one notification per user and
channel they have an address or number for, in their language.

Queueing wakes this process's notification senders of that database (`listen`), so a
notification goes out at once rather than at the sender's next poll; the sender's claim goes
through the same writer, after the queueing transaction's commit. Notifications queued by
other processes wait for that poll.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Engine

from smsdesk.domain.ids import new_id
from smsdesk.notify.messages import CHANNELS, EVENTS, render, sms_text
from smsdesk.store import db
from smsdesk.store import notifications as store

Wake = Callable[[], None]

# The senders of this process, by the database they send from.
_listeners: weakref.WeakKeyDictionary[Engine, list[Wake]] = db.per_engine()


def listen(engine: Engine, wake: Wake) -> Callable[[], None]:
    """Call `wake` whenever notifications are queued on `engine`; returns the undo."""
    _listeners.setdefault(engine, []).append(wake)

    def unlisten() -> None:
        waiting = _listeners.get(engine, [])
        if wake in waiting:
            waiting.remove(wake)

    return unlisten


def _announce(conn: Connection) -> None:
    for wake in list(_listeners.get(conn.engine, ())):
        wake()


def choices(raw: str | None) -> dict[str, list[str]]:
    """A user's stored choices, cleaned: known events to known channels."""
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        event: [c for c in CHANNELS if c in channels]
        for event, channels in data.items()
        if event in EVENTS and isinstance(channels, list)
    }


def queue_for_event(
    conn: Connection, event: str, request_id: str, actor_user_id: int | None, at: float
) -> int:
    """Queue the notifications of one request's event; returns how many were stored."""
    return queue_for_requests(conn, event, [request_id], actor_user_id, at)


def queue_for_requests(
    conn: Connection,
    event: str,
    request_ids: Iterable[str],
    actor_user_id: int | None,
    at: float,
) -> int:
    """Queue one event's notifications for several requests at once."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    rows: list[dict[str, Any]] = []
    for person in store.concerned(conn, event, request_ids):
        if actor_user_id is not None and person.user_id == actor_user_id:
            continue
        wanted = choices(person.notify).get(event, [])
        addresses = {"email": person.email, "sms": person.phone}
        for channel in wanted:
            if not addresses[channel]:
                continue
            text = render(
                event, person.language, person.title, person.group_name, person.request_id
            )
            rows.append(
                {
                    "id": new_id(),
                    "user_id": person.user_id,
                    "event": event,
                    "channel": channel,
                    "request_id": person.request_id,
                    "subject": text.subject,
                    "body": text.body if channel == "email" else sms_text(text),
                    "status": store.PENDING,
                    "attempts": 0,
                    "next_attempt_at": at,
                    "lease_until": None,
                    "last_error": None,
                    "created_at": at,
                    "sent_at": None,
                }
            )
    store.insert_notifications(conn, rows)
    if rows:
        _announce(conn)
    return len(rows)
