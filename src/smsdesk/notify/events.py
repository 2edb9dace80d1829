"""Queueing notifications when something happens to a request.

`queue_for_event` runs in the transaction of the change: it finds the users the event concerns
(one query, which is all it costs when nobody is to be told), leaves out the one who acted, reads
each user's choices (`users.notify`: event -> channels) and stores one notification per user and
channel they have an address or number for, in their language.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from smsdesk.domain.ids import new_id
from smsdesk.notify.messages import CHANNELS, EVENTS, render, sms_text
from smsdesk.store import notifications as store


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
    return len(rows)
