"""Groups, members, routing rules and round-robin through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from smsdesk.store.tables import audit_log, live_events, requests
from tests.support.harness import Harness
from tests.support.webui import create_user, log_in


async def open_desk(h: Harness) -> None:
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})


async def make_group(h: Harness, name: str, **extra: Any) -> dict[str, Any]:
    answer = await h.post("/api/v1/groups", {"name": name, **extra})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def add_rule(h: Harness, kind: str, value: str, group: str) -> dict[str, Any]:
    answer = await h.post("/api/v1/routing-rules", {"kind": kind, "value": value, "group": group})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def group_of(h: Harness, request_id: str) -> tuple[str | None, int | None]:
    with h.service.engine.connect() as conn:
        row = conn.execute(
            sa.select(requests.c.group_id, requests.c.owner_id).where(requests.c.id == request_id)
        ).one()
    return row.group_id, row.owner_id


async def test_administrators_manage_groups_and_members(any_db_harness: Harness) -> None:
    """A group is added, renamed and given members; names are unique in any case; a sender
    key may read but not change; a group with an open request is not deleted, an empty one is."""
    h = any_db_harness
    await open_desk(h)
    create_user(h.service, "anna", "agent")
    billing = await make_group(h, "Billing", description="Invoices")
    assert billing["member_count"] == 0 and billing["round_robin"] is False

    clash = await h.post("/api/v1/groups", {"name": "billing"})
    assert clash.status_code == 422
    assert "already a group named 'Billing'" in clash.json()["error"]["message"]

    renamed = await h.client.patch(
        "/api/v1/groups/Billing", json={"name": "Invoices", "round_robin": True}, headers=h.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Invoices" and renamed.json()["round_robin"] is True

    added = await h.post("/api/v1/groups/Invoices/members", {"user": "anna"})
    assert added.status_code == 201
    assert [m["username"] for m in added.json()["members"]] == ["anna"]
    again = await h.post("/api/v1/groups/Invoices/members", {"user": "anna"})
    assert again.status_code == 200
    nobody = await h.post("/api/v1/groups/Invoices/members", {"user": "zoe"})
    assert nobody.status_code == 404 and "no user 'zoe'" in nobody.json()["error"]["message"]

    _, sender = h.service.keys.create("integration", "sender")
    as_sender = {"Authorization": f"Bearer {sender}"}
    listed = await h.client.get("/api/v1/groups", headers=as_sender)
    assert [(g["name"], g["member_count"]) for g in listed.json()["groups"]] == [("Invoices", 1)]
    refused = await h.client.post("/api/v1/groups", json={"name": "X"}, headers=as_sender)
    assert refused.status_code == 403

    await add_rule(h, "endpoint_code", "help", "Invoices")
    sms = await h.receive("0612345678", "HELP my invoice")
    held = await h.client.delete("/api/v1/groups/Invoices", headers=h.headers)
    assert held.status_code == 409
    assert "still has 1 open or pending requests" in held.json()["error"]["message"]

    closed = await h.client.patch(
        f"/api/v1/requests/{sms['request_id']}", json={"status": "closed"}, headers=h.headers
    )
    assert closed.status_code == 200
    gone = await h.client.delete("/api/v1/groups/Invoices", headers=h.headers)
    assert gone.status_code == 204
    assert (await h.get("/api/v1/groups")).json()["groups"] == []
    assert (await h.get("/api/v1/routing-rules")).json()["rules"] == []
    assert group_of(h, sms["request_id"]) == (None, None)
    with h.service.engine.connect() as conn:
        actions = conn.execute(sa.select(audit_log.c.action)).scalars().all()
    for action in ("group.created", "group.changed", "group.member_added", "group.deleted"):
        assert action in actions


async def test_routing_rules_route_by_code_keyword_and_receiving_number(
    any_db_harness: Harness,
) -> None:
    """First match wins: a keyword rule before a number rule before an endpoint-code rule; an SMS
    that matches none opens a request without a group; rules can be put in another order."""
    h = any_db_harness
    await open_desk(h)
    for name in ("Billing", "Shop", "General"):
        await make_group(h, name)
    keyword = await add_rule(h, "keyword", "Billing", "Billing")
    number = await add_rule(h, "receiving_number", "097 010 99", "Shop")
    code = await add_rule(h, "endpoint_code", "HELP", "General")
    assert number["value"] == "+319701099" and keyword["value"] == "BILLING"

    groups = {g["name"]: g["id"] for g in (await h.get("/api/v1/groups")).json()["groups"]}
    by_word = await h.receive("0611111111", "HELP billing: wrong amount", to="+319701099")
    by_number = await h.receive("0622222222", "HELP where is my parcel", to="+319701099")
    by_code = await h.receive("0633333333", "HELP hello", to="+3197010")
    assert group_of(h, by_word["request_id"])[0] == groups["Billing"]
    assert group_of(h, by_number["request_id"])[0] == groups["Shop"]
    assert group_of(h, by_code["request_id"])[0] == groups["General"]

    reordered = await h.client.put(
        "/api/v1/routing-rules/order",
        json={"ids": [code["id"], keyword["id"], number["id"]]},
        headers=h.headers,
    )
    assert [r["kind"] for r in reordered.json()["rules"]] == [
        "endpoint_code",
        "keyword",
        "receiving_number",
    ]
    after = await h.receive("0644444444", "HELP billing again", to="+319701099")
    assert group_of(h, after["request_id"])[0] == groups["General"]

    bad = await h.post("/api/v1/routing-rules", {"kind": "colour", "value": "x", "group": "Shop"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "kind"
    incomplete = await h.client.put(
        "/api/v1/routing-rules/order", json={"ids": [code["id"]]}, headers=h.headers
    )
    assert incomplete.status_code == 422

    await h.client.delete(f"/api/v1/routing-rules/{code['id']}", headers=h.headers)
    await h.client.delete(f"/api/v1/routing-rules/{keyword['id']}", headers=h.headers)
    await h.client.delete(f"/api/v1/routing-rules/{number['id']}", headers=h.headers)
    unrouted = await h.receive("0655555555", "HELP nothing matches", to="+319701099")
    assert group_of(h, unrouted["request_id"]) == (None, None)


async def present(h: Harness, username: str) -> None:
    """The user opens a page (which marks them present)."""
    async with h.browser() as client:
        assert (await log_in(client, username)).status_code == 303
        assert (await client.get("/requests")).status_code == 200


async def test_round_robin_gives_new_requests_to_present_members_in_turn(
    any_db_harness: Harness,
) -> None:
    """New requests of a round-robin group go in turn to members who are present, the one
    assigned longest ago first; a member who never opened a page gets none."""
    h = any_db_harness
    await open_desk(h)
    users = {name: create_user(h.service, name, "agent").id for name in ("anna", "bram", "cas")}
    await make_group(h, "Desk", round_robin=True)
    for name in users:
        await h.post("/api/v1/groups/Desk/members", {"user": name})
    await add_rule(h, "endpoint_code", "HELP", "Desk")
    await present(h, "anna")
    await present(h, "bram")

    owners: list[int] = []
    for n in range(4):
        sms = await h.receive(f"061234567{n}", f"HELP question {n}")
        owner = group_of(h, sms["request_id"])[1]
        assert owner is not None
        owners.append(owner)
    assert users["cas"] not in owners
    assert sorted(owners) == sorted([users["anna"], users["bram"]] * 2)
    assert owners[0] != owners[1] and owners[2] != owners[3]

    members = (await h.get("/api/v1/groups/Desk")).json()["members"]
    assigned = {m["username"]: m["last_assigned_at"] for m in members}
    assert assigned["cas"] is None and assigned["anna"] and assigned["bram"]


async def test_owner_and_group_set_through_the_api(any_db_harness: Harness) -> None:
    """An admin key sets and clears the owner and group; the change is published live and
    audited; a sender key and an unknown user are refused."""
    h = any_db_harness
    await open_desk(h)
    anna = create_user(h.service, "anna", "agent")
    await make_group(h, "Shop")
    sms = await h.receive("0612345678", "HELP hello")
    path = f"/api/v1/requests/{sms['request_id']}"

    with h.service.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.max(live_events.c.id))).scalar() or 0
    set_both = await h.client.patch(
        path, json={"owner": "anna", "group": "shop"}, headers=h.headers
    )
    assert set_both.status_code == 200, set_both.text
    body = set_both.json()
    assert body["owner"] == {"id": anna.id, "username": "anna"}
    assert body["group"]["name"] == "Shop"
    with h.service.engine.connect() as conn:
        published = (
            conn.execute(sa.select(live_events.c.key).where(live_events.c.id > before))
            .scalars()
            .all()
        )
        audited = (
            conn.execute(
                sa.select(audit_log.c.details).where(audit_log.c.action == "request.assigned")
            )
            .scalars()
            .all()
        )
    assert sms["request_id"] in published
    assert audited and "anna" in audited[-1]

    unknown = await h.client.patch(path, json={"owner": "zoe"}, headers=h.headers)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["fields"][0] == {
        "field": "owner",
        "message": "There is no user 'zoe'.",
    }
    _, sender = h.service.keys.create("integration", "sender")
    refused = await h.client.patch(
        path, json={"owner": None}, headers={"Authorization": f"Bearer {sender}"}
    )
    assert refused.status_code == 403

    cleared = await h.client.patch(path, json={"owner": None}, headers=h.headers)
    assert cleared.json()["owner"] is None and cleared.json()["group"]["name"] == "Shop"
    status_only = await h.client.patch(path, json={"status": "pending"}, headers=h.headers)
    assert status_only.json()["group"]["name"] == "Shop"


async def browser_for(h: Harness, name: str) -> httpx.AsyncClient:
    client = h.browser()
    assert (await log_in(client, name)).status_code == 303
    return client
