"""Live updates across processes: what one process changes reaches pages connected to another.

Two services share one database (SQLite and PostgreSQL), as several `smsdesk serve` processes
do; the second one's feed is what a browser on that process would be streamed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from smsdesk.conversations import requests as conversations
from smsdesk.live.feed import Subscription
from smsdesk.live.updates import LiveUpdate, parse_interest
from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store import live as live_store
from smsdesk.store.tables import live_events
from tests.conftest import database_url
from tests.support.harness import Harness

CUSTOMER = "+31612345678"


@pytest.fixture
async def other(tmp_path: Path, engine: Engine, any_db_harness: Harness) -> AsyncIterator[Service]:
    """A second process on the same database, without a dispatcher of its own."""
    service = Service(AppConfig(data_dir=tmp_path / "other", database_url=database_url(engine)))
    await service.start(dispatcher=False)
    try:
        yield service
    finally:
        await service.stop()
        service.close()


async def collect(
    subscription: Subscription, done: Callable[[list[LiveUpdate]], bool], timeout: float = 10.0
) -> list[LiveUpdate]:
    """Updates of a subscription until `done` holds for those seen; fails after `timeout`."""
    seen: list[LiveUpdate] = []
    deadline = time.monotonic() + timeout
    while not done(seen):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out; seen: {seen}")
        batch = await subscription.next(left)
        assert batch is not None, "the subscription was closed"
        seen += batch
    return seen


def statuses_of(updates: list[LiveUpdate], message_id: str) -> list[str]:
    return [
        u.data["status"] for u in updates if u.topic == "message" and u.data["id"] == message_id
    ]


async def open_request(h: Harness) -> str:
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    inbound = await h.receive(CUSTOMER, "HELP my order is late")
    return str(inbound["request_id"])


async def test_a_status_change_in_one_process_reaches_a_page_of_another(
    any_db_harness: Harness, other: Service
) -> None:
    """A message sent through one process: a page on the other sees it queued, sent, delivered."""
    subscription = await other.live.subscribe(parse_interest("message"))
    answer = await any_db_harness.post("/api/v1/messages", {"to": CUSTOMER, "text": "Hello"})
    message_id = answer.json()["id"]
    updates = await collect(subscription, lambda seen: "delivered" in statuses_of(seen, message_id))
    assert statuses_of(updates, message_id)[0] == "queued"


async def test_a_request_change_reaches_the_other_process_within_two_seconds(
    any_db_harness: Harness, other: Service
) -> None:
    """An agent closes a request on one process; a page of it on the other hears within 2 s."""
    request_id = await open_request(any_db_harness)
    subscription = await other.live.subscribe(parse_interest("request", request_id))
    service = any_db_harness.service
    await service.writer.run(
        lambda conn: conversations.update_request(
            conn, request_id, {"status": "closed"}, service.clock()
        )
    )
    changed = time.monotonic()
    updates = await collect(subscription, lambda seen: any(u.topic == "request" for u in seen))
    assert time.monotonic() - changed < 2.0
    assert updates[0].data == {"id": request_id, "fields": ["status"]}


async def test_a_customer_sms_reaches_the_pages_of_its_request_only(
    any_db_harness: Harness, other: Service
) -> None:
    """An SMS joining a conversation is announced to that request's page, not to another's."""
    request_id = await open_request(any_db_harness)
    mine = await other.live.subscribe(parse_interest("conversation", request_id))
    elsewhere = await other.live.subscribe(parse_interest("conversation", "01NOSUCHREQUEST"))
    await any_db_harness.receive(CUSTOMER, "HELP still waiting")
    updates = await collect(mine, lambda seen: bool(seen))
    assert updates[0].data["request_id"] == request_id
    assert updates[0].data["direction"] == "in"
    assert await elsewhere.next(0.6) == []


async def test_a_new_request_is_announced_to_the_requests_list(
    any_db_harness: Harness, other: Service
) -> None:
    """The requests list hears of a request opened by an inbound SMS."""
    subscription = await other.live.subscribe(parse_interest("request,conversation"))
    request_id = await open_request(any_db_harness)
    updates = await collect(
        subscription,
        lambda seen: any(u.topic == "request" and u.data["id"] == request_id for u in seen),
    )
    created = [u for u in updates if u.topic == "request"]
    assert created[0].data["fields"] == ["created"]


async def test_a_resumed_subscription_gets_what_happened_while_it_was_away(
    any_db_harness: Harness, other: Service
) -> None:
    """Reconnecting with the last cursor seen loses nothing made in between."""
    first = await other.live.subscribe(parse_interest("message"))
    left_at = first.start
    other.live.unsubscribe(first)
    answer = await any_db_harness.post("/api/v1/messages", {"to": CUSTOMER, "text": "While away"})
    message_id = answer.json()["id"]
    await any_db_harness.wait_for(message_id, "delivered")
    resumed = await other.live.subscribe(parse_interest("message"), resume=left_at)
    updates = await collect(resumed, lambda seen: "delivered" in statuses_of(seen, message_id))
    assert statuses_of(updates, message_id)[0] == "queued"


async def test_no_page_connected_means_no_queries(any_db_harness: Harness) -> None:
    """The poller asks the database only while a page listens."""
    feed = any_db_harness.service.live
    subscription = await feed.subscribe(parse_interest("message"))
    await any_db_harness.wait_until(lambda: feed.polls >= 2, "two polls")
    feed.unsubscribe(subscription)
    await any_db_harness.wait_until(lambda: not feed.polling, "the poller to stop")
    polls = feed.polls
    await any_db_harness.post("/api/v1/messages", {"to": CUSTOMER, "text": "Nobody watches"})
    await any_db_harness.idle_scans()
    assert feed.polls == polls


async def test_old_live_events_are_purged(any_db_harness: Harness) -> None:
    """Published changes are kept for minutes only."""
    service = any_db_harness.service
    now = service.clock()
    await service.writer.run(
        lambda conn: live_store.publish(conn, "request", "old", {"fields": []}, now - 700)
    )
    await service.writer.run(
        lambda conn: live_store.publish(conn, "request", "new", {"fields": []}, now)
    )
    subscription = await service.live.subscribe(parse_interest("request"))

    def remaining() -> list[str]:
        with service.engine.connect() as conn:
            found = live_store.changes(conn, live_store.Cursor())
        return [event.key or "" for event in found.live]

    await any_db_harness.wait_until(lambda: remaining() == ["new"], "the old event purged")
    service.live.unsubscribe(subscription)


async def test_a_change_committed_after_a_later_one_still_arrives(
    any_db_harness: Harness, other: Service
) -> None:
    """An id taken by a transaction that commits after one holding a higher id is not
    passed over (on PostgreSQL ids are handed out before commit)."""
    subscription = await other.live.subscribe(parse_interest("request"))
    first = subscription.start.live + 1
    service = any_db_harness.service

    async def commit(row_id: int, key: str) -> None:
        row = {"id": row_id, "at": service.clock(), "topic": "request", "key": key}
        await service.writer.run(
            lambda conn: conn.execute(live_events.insert().values(**row, payload="{}"))
        )

    await commit(first + 1, "committed-first")
    await collect(subscription, lambda seen: any(u.data["id"] == "committed-first" for u in seen))
    await commit(first, "committed-late")
    await collect(subscription, lambda seen: any(u.data["id"] == "committed-late" for u in seen))
