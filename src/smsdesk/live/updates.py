"""The updates a page receives, what a page asks for, and the cursor that resumes a stream.

Three topics: `message` (a message's status changed: id, status, request_id; or it was deleted:
the same with status "deleted" and `deleted`), `conversation`
(an SMS joined a request's conversation: request_id, direction, message_id) and `request`
(a request itself changed: id, fields). A page asks for topics and, optionally, keys: a message
update has the message's id and its request's id as keys, the others their request's id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from smsdesk.domain.errors import DomainError
from smsdesk.store.live import Changes, Cursor

TOPICS = ("message", "conversation", "request")
# Sent instead of updates a connection could not keep up with: the page reloads its parts.
REFRESH = "refresh"
MAX_KEYS = 50
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CURSOR = re.compile(r"^(\d{1,18})-(\d{1,18})-(\d{1,18})$")


@dataclass(frozen=True, slots=True)
class LiveUpdate:
    """One update; `cursor` is where a stream resumes after it."""

    topic: str
    keys: frozenset[str]
    data: dict[str, Any]
    cursor: Cursor


@dataclass(frozen=True, slots=True)
class Interest:
    """What a page asked for: these topics, and only these keys unless `keys` is empty."""

    topics: frozenset[str]
    keys: frozenset[str] = frozenset()

    def wants(self, update: LiveUpdate) -> bool:
        if update.topic == REFRESH:
            return True
        if update.topic not in self.topics:
            return False
        return not self.keys or not self.keys.isdisjoint(update.keys)


def _words(text: str) -> list[str]:
    return [word for word in (part.strip() for part in text.split(",")) if word]


def parse_interest(topics: str, keys: str = "") -> Interest:
    """Comma-separated topics (at least one) and keys, as a page sends them."""
    chosen = _words(topics)
    if not chosen or any(topic not in TOPICS for topic in chosen):
        raise DomainError(f"Topics must be some of {', '.join(TOPICS)}.", field="topics")
    wanted = _words(keys)
    if len(wanted) > MAX_KEYS or any(not _KEY.match(key) for key in wanted):
        raise DomainError(f"Keys are up to {MAX_KEYS} ids, separated by commas.", field="keys")
    return Interest(frozenset(chosen), frozenset(wanted))


def cursor_text(cursor: Cursor) -> str:
    return f"{cursor.timeline}-{cursor.conversation}-{cursor.live}"


def parse_cursor(text: str | None) -> Cursor | None:
    """A cursor sent back by a page (`Last-Event-ID`, `after`); None if absent or not one."""
    match = _CURSOR.match((text or "").strip())
    if match is None:
        return None
    return Cursor(*(int(part) for part in match.groups()))


def updates_from(changes: Changes, start: Cursor) -> tuple[list[LiveUpdate], Cursor]:
    """The updates read rows make, in the order read, and the cursor after all of them."""
    updates: list[LiveUpdate] = []
    timeline, conversation, live = start.timeline, start.conversation, start.live
    for change in changes.timeline:
        timeline = max(timeline, change.id)
        keys = {change.message_id} | ({change.request_id} if change.request_id else set())
        data = {"id": change.message_id, "status": change.status, "request_id": change.request_id}
        updates.append(
            LiveUpdate("message", frozenset(keys), data, Cursor(timeline, conversation, live))
        )
    for entry in changes.conversation:
        conversation = max(conversation, entry.id)
        data = {
            "request_id": entry.request_id,
            "direction": entry.direction,
            "message_id": entry.message_id,
        }
        updates.append(
            LiveUpdate(
                "conversation",
                frozenset({entry.request_id}),
                data,
                Cursor(timeline, conversation, live),
            )
        )
    for event in changes.live:
        live = max(live, event.id)
        data = {**event.payload, "id": event.key}
        # A published message change (a deletion) is keyed as a status change is: by the
        # message and by its request, so the request's conversation hears of it too.
        related = event.payload.get("request_id")
        keys = {k for k in (event.key, related if isinstance(related, str) else None) if k}
        updates.append(
            LiveUpdate(event.topic, frozenset(keys), data, Cursor(timeline, conversation, live))
        )
    return updates, Cursor(timeline, conversation, live)


def refresh(cursor: Cursor) -> LiveUpdate:
    """Tells a page that more changed than was sent: reload what it shows."""
    return LiveUpdate(REFRESH, frozenset(), {}, cursor)
