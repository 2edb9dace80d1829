"""What a page may ask of the live feed, the cursor it resumes with, and how a slow page is
told to reload instead of being sent an ever longer backlog."""

from __future__ import annotations

import pytest

from smsdesk.domain.errors import DomainError
from smsdesk.live.feed import Subscription
from smsdesk.live.updates import (
    LiveUpdate,
    cursor_text,
    parse_cursor,
    parse_interest,
    updates_from,
)
from smsdesk.store.live import Changes, ConversationEntry, Cursor, LiveEvent, StatusChange


def test_a_cursor_reads_back_as_written() -> None:
    """The id a stream sends is the cursor it resumes from."""
    cursor = Cursor(12, 7, 3)
    assert cursor_text(cursor) == "12-7-3"
    assert parse_cursor("12-7-3") == cursor


@pytest.mark.parametrize("text", [None, "", "12-7", "a-b-c", "1-2-3-4", "-1-2-3", "1-2-3\n4"])
def test_anything_else_is_no_cursor(text: str | None) -> None:
    """A missing or malformed Last-Event-ID starts from now rather than failing."""
    assert parse_cursor(text) is None


def test_a_page_asks_for_topics_and_keys() -> None:
    interest = parse_interest("message, conversation", "01ABC,01DEF")
    assert interest.topics == {"message", "conversation"}
    assert interest.keys == {"01ABC", "01DEF"}


@pytest.mark.parametrize(
    ("topics", "keys", "field"),
    [
        ("", "", "topics"),
        ("weather", "", "topics"),
        ("message", "a b", "keys"),
        ("message", ",".join(f"k{i}" for i in range(51)), "keys"),
        ("message", "x" * 65, "keys"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(topics: str, keys: str, field: str) -> None:
    with pytest.raises(DomainError) as refused:
        parse_interest(topics, keys)
    assert refused.value.field == field


def test_rows_become_updates_each_with_the_cursor_after_it() -> None:
    """Resuming from any update's cursor skips exactly what came before it."""
    changes = Changes(
        timeline=[StatusChange(11, "m1", "sent", "r1"), StatusChange(12, "m2", "queued", None)],
        conversation=[ConversationEntry(5, "r1", "in", None)],
        live=[LiveEvent(3, "request", "r1", {"fields": ["status"]})],
    )
    updates, end = updates_from(changes, Cursor(10, 4, 2))
    assert [(u.topic, cursor_text(u.cursor)) for u in updates] == [
        ("message", "11-4-2"),
        ("message", "12-4-2"),
        ("conversation", "12-5-2"),
        ("request", "12-5-3"),
    ]
    assert end == Cursor(12, 5, 3)
    assert updates[0].keys == {"m1", "r1"} and updates[1].keys == {"m2"}
    assert updates[3].data == {"id": "r1", "fields": ["status"]}


def update(topic: str, key: str, n: int) -> LiveUpdate:
    return LiveUpdate(topic, frozenset({key}), {"id": key}, Cursor(n, 0, 0))


async def test_a_subscription_keeps_only_what_its_page_asked_for() -> None:
    subscription = Subscription(parse_interest("message", "m1"))
    subscription.offer(update("message", "m2", 1))
    subscription.offer(update("request", "m1", 2))
    subscription.offer(update("message", "m1", 3))
    taken = await subscription.next(0.01)
    assert taken is not None and [u.cursor.timeline for u in taken] == [3]
    assert await subscription.next(0.01) == []


async def test_a_page_too_far_behind_gets_one_refresh() -> None:
    """Past its limit a subscription drops the backlog and says: reload what you show."""
    subscription = Subscription(parse_interest("message"), limit=3)
    for n in range(1, 6):
        subscription.offer(update("message", f"m{n}", n))
    taken = await subscription.next(0.01)
    assert taken is not None and [u.topic for u in taken] == ["refresh"]
    assert taken[0].cursor == Cursor(5, 0, 0)


async def test_a_closed_subscription_ends_its_stream() -> None:
    subscription = Subscription(parse_interest("message"))
    subscription.close()
    assert await subscription.next(5) is None
