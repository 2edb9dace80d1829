"""SMS notifying agents are not messages to customers: the dashboard's figures leave them out
(days, modules, rates, medians) and count them apart, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

from sqlalchemy.engine import Engine

from smsdesk.store.stats import Counts, dashboard_stats
from tests.integration.test_stats import insert, row, stats
from tests.support.harness import Harness
from tests.support.webui import create_user


def test_agent_notifications_are_counted_apart(engine: Engine) -> None:
    """A notification SMS is out of every figure; an API message that happens to carry a
    reference starting with notification: is a customer's message all the same."""
    notification = {
        **row("delivered", delivered_after=500.0),
        "reference": "notification:01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "transactional": True,
    }
    lookalike = {
        **row("failed"),
        "reference": "notification:mine",
        "api_key_id": "01ARZ3NDEKTSV4RRFFQ69G5FAW",
    }
    for message in (row("delivered", delivered_after=30.0), notification, lookalike):
        insert(engine, message)  # one by one: a multi-row insert takes the first row's keys
    result = stats(engine)
    assert result.totals == Counts(created=2, sent=1, delivered=1, rejected=1)
    assert result.notification_sends == Counts(created=1, sent=1, delivered=1)
    assert result.median_delivery_seconds == 30.0
    assert sum(day.counts.created for day in result.days) == 2
    assert result.by_module["cm"].created == 2


async def test_an_sms_notification_is_not_a_customer_message(any_db_harness: Harness) -> None:
    """The SMS telling Anna she was assigned a request, queued by the notification sender,
    is left out of the dashboard; the customer's message is in it."""
    h = any_db_harness
    create_user(h.service, "anna", "agent")
    h.service.users.set_contact(
        "anna",
        {"phone": "+31612000001", "notify": json.dumps({"request.assigned": ["sms"]})},
    )
    made = await h.post("/api/v1/requests", {"number": "+31612345678", "text": "Hello"})
    assert made.status_code == 201, made.text
    assigned = await h.client.patch(
        f"/api/v1/requests/{made.json()['id']}", json={"owner": "anna"}, headers=h.headers
    )
    assert assigned.status_code == 200, assigned.text

    def figures() -> tuple[int, int]:
        with h.service.engine.connect() as conn:
            found = dashboard_stats(conn, now=time.time(), days=1)
        return found.totals.created, found.notification_sends.created

    await h.wait_until(lambda: figures()[1] == 1, "the notification SMS in the outbox")
    assert figures() == (1, 1)
