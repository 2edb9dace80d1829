"""Assigning a request queues the new owner's "assigned to me" notification, never for their
own action; round-robin assignment notifies too."""

from __future__ import annotations

import json

import sqlalchemy as sa

from smsdesk.store.tables import notifications
from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in


def assigned_to(h: Harness) -> list[int]:
    with h.service.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(notifications.c.user_id).where(
                    notifications.c.event == "request.assigned"
                )
            ).scalars()
        )


async def test_the_new_owner_is_notified_unless_they_took_it_themselves(
    any_db_harness: Harness,
) -> None:
    """An API key giving the request to Anna notifies her; Bram taking one himself does not
    notify him; a round-robin request given to Bram does."""
    h = any_db_harness
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    anna = create_user(h.service, "anna", "agent")
    bram = create_user(h.service, "bram", "agent")
    for user in ("anna", "bram"):
        h.service.users.set_contact(
            user,
            {"email": f"{user}@example.org", "notify": json.dumps({"request.assigned": ["email"]})},
        )
    first = (await h.receive("0611111111", "HELP first"))["request_id"]
    given = await h.client.patch(
        f"/api/v1/requests/{first}", json={"owner": "anna"}, headers=h.headers
    )
    assert given.status_code == 200
    assert assigned_to(h) == [anna.id]

    second = (await h.receive("0622222222", "HELP second"))["request_id"]
    async with h.browser() as client:
        await log_in(client, "bram")
        page = await client.get(f"/requests/{second}")
        taken = await client.post(
            f"/requests/{second}/assign", data={"csrf_token": csrf_of(page.text), "take": "1"}
        )
        assert taken.status_code == 303
    assert assigned_to(h) == [anna.id]

    await h.post("/api/v1/groups", {"name": "Desk", "round_robin": True})
    await h.post("/api/v1/groups/Desk/members", {"user": "bram"})
    await h.post("/api/v1/routing-rules", {"kind": "keyword", "value": "parcel", "group": "Desk"})
    await h.receive("0633333333", "HELP parcel missing")
    assert sorted(assigned_to(h)) == sorted([anna.id, bram.id])
