"""Connections, routes and spend controls through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from smsdesk.store.tables import inbound_messages, messages
from tests.support.harness import Harness

TOKEN = "tok-" + "9" * 28
TWILIO = {
    "name": "Twilio reserve",
    "module": "twilio",
    "settings": {"account_sid": "AC" + "a" * 32, "auth_token": TOKEN},
}


async def add(h: Harness, body: dict[str, Any]) -> dict[str, Any]:
    answer = await h.post("/api/v1/connections", body)
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


def connection_of(h: Harness, message_id: str) -> str:
    with h.service.engine.connect() as conn:
        return str(
            conn.execute(
                sa.select(messages.c.connection_id).where(messages.c.id == message_id)
            ).scalar_one()
        )


async def test_connections_are_managed_and_never_show_a_secret(any_db_harness: Harness) -> None:
    """A connection is added, listed, changed (a blank secret keeps its value), made the
    default and removed; no answer carries its token; invalid settings name their path."""
    h = any_db_harness
    made = await add(h, TWILIO)
    assert made["settings"]["auth_token"] == "********" and TOKEN not in str(made)
    assert made["callbacks"]["status"].endswith(
        f"/webhooks/connections/{made['id']}/status/"
        + made["callbacks"]["status"].rsplit("/", 1)[1]
    )
    listed = await h.get("/api/v1/connections")
    assert TOKEN not in listed.text
    assert [(c["name"], c["is_default"]) for c in listed.json()["connections"]] == [
        ("default", True),
        ("Twilio reserve", False),
    ]
    assert listed.json()["connections"][1]["health"]["state"] == "closed"
    assert listed.json()["connections"][1]["last_hour"]["failovers"] == 0

    changed = await h.client.patch(
        f"/api/v1/connections/{made['id']}",
        json={"rate_limit": 5, "settings": {"auth_token": ""}},
        headers=h.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["rate_limit"] == 5 and TOKEN not in changed.text
    stored = h.service.settings.connections.get(made["id"])
    assert stored is not None and stored.settings["auth_token"].get_secret_value() == TOKEN

    wrong = await h.post(
        "/api/v1/connections",
        {"name": "Broken", "module": "twilio", "settings": {"account_sid": "nope"}},
    )
    assert wrong.status_code == 422
    assert [f["field"] for f in wrong.json()["error"]["fields"]] == ["settings.account_sid"]
    unknown = await h.post("/api/v1/connections", {"name": "X", "module": "nosuch"})
    assert unknown.status_code == 422 and unknown.json()["error"]["fields"][0]["field"] == "module"

    refused = await h.client.delete("/api/v1/connections/default", headers=h.headers)
    assert refused.status_code == 422 and "default connection" in refused.text
    moved = await h.post(f"/api/v1/connections/{made['id']}/default")
    assert moved.status_code == 200 and moved.json()["is_default"] is True
    back = await h.post("/api/v1/connections/default/default")
    assert back.status_code == 200
    gone = await h.client.delete(f"/api/v1/connections/{made['id']}", headers=h.headers)
    assert gone.status_code == 204
    assert (await h.get(f"/api/v1/connections/{made['id']}")).status_code == 404

    _, sender = h.service.keys.create("integration", "sender")
    as_sender = {"Authorization": f"Bearer {sender}"}
    assert (await h.client.get("/api/v1/connections", headers=as_sender)).status_code == 403


async def test_explain_agrees_with_where_messages_go(any_db_harness: Harness) -> None:
    """A route for Norway sends Norwegian numbers through its connection and everything else
    through the default; explain names the same connection a message is given."""
    h = any_db_harness
    await h.configure(default_country_code="+31")
    allowed = await h.put("/api/v1/spend", {"allowed_countries": ["NL", "NO"]})
    assert allowed.status_code == 200, allowed.text
    reserve = await add(h, {"name": "Norway", "module": "simulator", "settings": {}})
    route = await h.post(
        "/api/v1/routes",
        {"name": "Norway", "countries": ["no"], "connections": ["Norway", "default"]},
    )
    assert route.status_code == 201, route.text
    assert [c["name"] for c in route.json()["connections"]] == ["Norway", "default"]
    for number, expected in (("+4790012345", reserve["id"]), ("0612345678", "default")):
        explained = await h.post("/api/v1/routes/explain", {"to": number})
        assert explained.status_code == 200, explained.text
        assert explained.json()["first"] == expected
        sent = await h.post("/api/v1/messages", {"to": number, "text": "hi"})
        assert sent.status_code in (200, 201, 202), sent.text
        assert connection_of(h, sent.json()["id"]) == expected
    norway = (await h.post("/api/v1/routes/explain", {"to": "+4790012345"})).json()
    assert norway["route"]["name"] == "Norway" and norway["route"]["matched"] == "countries"
    assert [c["skipped"] for c in norway["connections"]] == [None, None]

    off = await h.client.patch(
        f"/api/v1/connections/{reserve['id']}", json={"enabled": False}, headers=h.headers
    )
    assert off.status_code == 200
    skipping = (await h.post("/api/v1/routes/explain", {"to": "+4790012345"})).json()
    assert [c["skipped"] for c in skipping["connections"]] == ["disabled", None]
    assert skipping["first"] == "default"

    second = await h.post(
        "/api/v1/routes", {"name": "Urgent", "priorities": [1], "connections": ["default"]}
    )
    order = await h.put(
        "/api/v1/routes/order", {"route_ids": [second.json()["id"], route.json()["id"]]}
    )
    assert [r["name"] for r in order.json()["routes"]] == ["Urgent", "Norway"]
    refused = await h.client.delete(f"/api/v1/connections/{reserve['id']}", headers=h.headers)
    assert refused.status_code == 422 and "Norway" in refused.json()["error"]["message"]
    removed = await h.client.delete(f"/api/v1/routes/{route.json()['id']}", headers=h.headers)
    assert removed.status_code == 204


async def test_spend_controls_and_todays_usage(any_db_harness: Harness) -> None:
    """Caps are saved field by field; a wrong one names its path; usage counts today's
    messages against the cap."""
    h = any_db_harness
    await h.configure(default_country_code="+31")
    saved = await h.put("/api/v1/spend", {"daily_total": 10})
    assert saved.status_code == 200 and saved.json()["daily_total"] == 10
    wrong = await h.put("/api/v1/spend", {"daily_per_country": {"Holland": 5}})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["fields"][0]["field"].startswith("spend.daily_per_country")
    assert (await h.post("/api/v1/messages", {"to": "0612345678", "text": "a"})).status_code < 300
    usage = (await h.get("/api/v1/spend/usage")).json()["usage"]
    total = next(u for u in usage if u["scope"] == "total")
    assert total["messages"] == 1 and total["cap"] == 10 and total["percent"] == 10.0
    paths = (await h.client.get("/openapi.json")).json()["paths"]
    for path in ("/api/v1/connections/{connection_id}/test", "/api/v1/routes/explain"):
        assert path in paths
    assert "/api/v1/spend/usage" in paths


async def test_send_test_goes_through_the_connection_asked_for(harness: Harness) -> None:
    """Send test of a connection sends through that connection, even while it is turned off."""
    h = harness
    await h.configure(default_country_code="+31")
    made = await add(h, {"name": "Spare", "module": "simulator", "enabled": False})
    sent = await h.post(f"/api/v1/connections/{made['id']}/test", {"to": "0612345678", "text": "t"})
    assert sent.status_code == 200, sent.text
    assert sent.json()["accepted"] is True and sent.json()["connection"] == made["id"]
    assert connection_of(h, sent.json()["id"]) == made["id"]


async def test_callbacks_reach_a_connection_by_its_own_url(harness: Harness) -> None:
    """A connection's own inbound URL stores the SMS; an unknown connection is 404, a wrong
    secret 403, and the module's old URL keeps working."""
    h = harness
    made = await add(h, {"name": "Second", "module": "simulator"})
    secret = h.service.settings.callback_secret()
    assert made["callbacks"]["inbound"].endswith(
        f"/webhooks/connections/{made['id']}/inbound/{secret}"
    )
    sms = '{"id": "MO-7", "from": "+31612345678", "to": "2525", "text": "hello"}'
    own = await h.client.post(f"/webhooks/connections/{made['id']}/inbound/{secret}", content=sms)
    assert own.status_code == 200, own.text
    old = await h.client.post(f"/webhooks/simulator/inbound/{secret}", content=sms)
    assert old.status_code == 200
    missing = await h.client.post(f"/webhooks/connections/nosuch/inbound/{secret}", content=sms)
    assert missing.status_code == 404
    forged = await h.client.post(f"/webhooks/connections/{made['id']}/status/wrong", content=sms)
    assert forged.status_code == 403


async def test_an_inbound_sms_remembers_the_connection_that_received_it(harness: Harness) -> None:
    """A connection's URL files the SMS under that connection; the module's URL under the
    default connection when it is of that module."""
    h = harness
    made = await add(h, {"name": "Second", "module": "simulator"})
    secret = h.service.settings.callback_secret()
    for path, message_id in (
        (f"/webhooks/connections/{made['id']}/inbound/{secret}", "MO-own"),
        (f"/webhooks/simulator/inbound/{secret}", "MO-old"),
    ):
        sms = f'{{"id": "{message_id}", "from": "+31612345678", "to": "2525", "text": "hi"}}'
        answer = await h.client.post(path, content=sms)
        assert answer.status_code == 200, answer.text
    with h.service.engine.connect() as conn:
        received = dict(
            conn.execute(
                sa.select(inbound_messages.c.provider_message_id, inbound_messages.c.connection_id)
            ).all()
        )
    assert received == {"MO-own": made["id"], "MO-old": "default"}
