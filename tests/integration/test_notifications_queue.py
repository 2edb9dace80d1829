"""Which notifications an event of a request queues, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import sqlalchemy as sa

from smsdesk.notify.events import queue_for_event
from smsdesk.store.tables import notifications
from tests.support.harness import Harness
from tests.support.webui import create_user


def choose(h: Harness, username: str, **values: object) -> None:
    if "notify" in values:
        values["notify"] = json.dumps(values["notify"])
    h.service.users.set_contact(username, values)  # type: ignore[arg-type]


def queued(h: Harness) -> list[tuple[str, str, str, str]]:
    with h.service.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                notifications.c.event,
                notifications.c.channel,
                notifications.c.user_id,
                notifications.c.subject,
            ).order_by(notifications.c.event, notifications.c.user_id, notifications.c.channel)
        ).all()
    names = {u.id: u.username for u in h.service.users.list()}
    return [(r.event, r.channel, names[r.user_id], r.subject) for r in rows]


async def test_a_new_request_in_a_group_notifies_the_members_who_chose_it(
    any_db_harness: Harness,
) -> None:
    """Members who chose e-mail or SMS for new requests in their group get one notification per
    channel they have an address for; a member who chose nothing, or has no address, gets none;
    a Dutch member reads Dutch."""
    h = any_db_harness
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    create_user(h.service, "anna", "agent")
    create_user(h.service, "bram", "agent", language="nl")
    create_user(h.service, "cees", "agent")
    create_user(h.service, "dirk", "agent")
    event = "request.new_in_group"
    choose(
        h, "anna", email="anna@example.org", phone="+31612000001", notify={event: ["email", "sms"]}
    )
    choose(h, "bram", email="bram@example.org", notify={event: ["email", "sms"]})  # no phone
    choose(h, "cees", email="cees@example.org", notify={})
    choose(h, "dirk", notify={event: ["email"]})  # no address
    assert (await h.post("/api/v1/groups", {"name": "Billing"})).status_code == 201
    for name in ("anna", "bram", "cees", "dirk"):
        await h.post("/api/v1/groups/Billing/members", {"user": name})
    rule = {"kind": "endpoint_code", "value": "help", "group": "Billing"}
    assert (await h.post("/api/v1/routing-rules", rule)).status_code == 201

    await h.receive("0612345678", "HELP my invoice")

    assert queued(h) == [
        (event, "email", "anna", "New request in Billing: my invoice"),
        (event, "sms", "anna", "New request in Billing: my invoice"),
        (event, "email", "bram", "Nieuwe aanvraag in Billing: my invoice"),
    ]


async def test_the_owner_hears_of_assignment_and_answers_but_not_of_own_actions(
    any_db_harness: Harness,
) -> None:
    """The owner is told of being assigned by someone else and of the customer's answer; an
    agent who takes a request is not told of it."""
    h = any_db_harness
    await h.configure(default_country_code="+31")
    anna = create_user(h.service, "anna", "agent")
    choose(
        h,
        "anna",
        email="anna@example.org",
        notify={"request.assigned": ["email"], "request.customer_answered": ["email"]},
    )
    first = await h.receive("0612345678", "My parcel is late")
    request_id = first["request_id"]
    with h.service.engine.begin() as conn:
        assert queue_for_event(conn, "request.assigned", request_id, anna.id, 1.0) == 0
        assert queue_for_event(conn, "request.assigned", request_id, None, 1.0) == 0  # no owner
    answer = await h.client.patch(
        f"/api/v1/requests/{request_id}", json={"owner": "anna"}, headers=h.headers
    )
    assert answer.status_code == 200, answer.text
    await h.receive("0612345678", "Any news?")

    assert queued(h) == [
        ("request.assigned", "email", "anna", "Request assigned to you: My parcel is late"),
        ("request.customer_answered", "email", "anna", "The customer answered: My parcel is late"),
    ]
