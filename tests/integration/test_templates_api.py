"""Reply templates through the API: administrators keep them, any key reads and renders them."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.harness import Harness

CUSTOMER = "+31612345678"
SHIPPED = "Hello {customer.name}, order {prompt:order number} ships today. Ref {request.id}"


async def _create(h: Harness, name: str, body: str, language: str = "en") -> httpx.Response:
    return await h.post("/api/v1/templates", {"name": name, "language": language, "body": body})


async def _created(h: Harness, name: str, body: str, language: str = "en") -> dict[str, Any]:
    response = await _create(h, name, body, language)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _render(h: Harness, template_id: str, **body: Any) -> httpx.Response:
    return await h.post(f"/api/v1/templates/{template_id}/render", body)


async def _request_of_customer(h: Harness, name: str) -> str:
    """A request opened by an SMS from CUSTOMER, who is a known customer called `name`."""
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    created = await h.post("/api/v1/customers", {"name": name, "numbers": [CUSTOMER]})
    assert created.status_code == 201, created.text
    inbound = await h.receive(CUSTOMER, "HELP where is my parcel?")
    return str(inbound["request_id"])


async def test_templates_are_added_listed_changed_and_deleted(any_db_harness: Harness) -> None:
    """CRUD with an admin key: the template lists its prompts and variables; names are unique
    per language in any case, and the same name may exist in another language."""
    h = any_db_harness
    shipped = await _created(h, "Order shipped", SHIPPED)
    assert shipped["prompts"] == ["order number"]
    assert shipped["variables"] == ["customer.name", "request.id"]
    await _created(h, "Order shipped", "Hallo {customer.name}, uw bestelling is onderweg.", "nl")
    taken = await _create(h, "order SHIPPED", "Again", "en")
    assert taken.status_code == 422
    assert taken.json()["error"]["fields"][0]["field"] == "name"

    listed = (await h.get("/api/v1/templates", params={"language": "nl"})).json()["templates"]
    assert [(t["name"], t["language"]) for t in listed] == [("Order shipped", "nl")]
    found = (await h.get("/api/v1/templates", params={"search": "SHIPS TODAY"})).json()
    assert [t["id"] for t in found["templates"]] == [shipped["id"]]

    changed = await h.client.patch(
        f"/api/v1/templates/{shipped['id']}",
        json={"name": "Shipped", "body": "Shipped, {agent.name}"},
        headers=h.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Shipped" and changed.json()["prompts"] == []
    shown = (await h.get(f"/api/v1/templates/{shipped['id']}")).json()
    assert shown["body"] == "Shipped, {agent.name}"

    deleted = await h.client.delete(f"/api/v1/templates/{shipped['id']}", headers=h.headers)
    assert deleted.status_code == 204
    assert (await h.get(f"/api/v1/templates/{shipped['id']}")).status_code == 404


async def test_an_unknown_variable_is_refused_with_its_name_and_position(harness: Harness) -> None:
    """A typo in a variable is caught when saving, not when an agent sends."""
    response = await _create(harness, "Typo", "Dear {customer.nmae}, thanks")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["fields"][0]["field"] == "body"
    assert "{customer.nmae}" in error["message"] and "position 6" in error["message"]
    stray = await _create(harness, "Brace", "Price } 10")
    assert "position 7" in stray.json()["error"]["message"]
    for body, field in (
        ({"name": "", "language": "en", "body": "x"}, "name"),
        ({"name": "A", "language": "english", "body": "x"}, "language"),
        ({"name": "A", "language": "en", "body": "bell \x07"}, "body"),
    ):
        refused = await harness.post("/api/v1/templates", body)
        assert refused.status_code == 422
        assert refused.json()["error"]["fields"][0]["field"] == field


async def test_only_admin_keys_change_templates_but_any_key_reads(harness: Harness) -> None:
    """A sender key reads and renders templates but cannot add, change or delete them."""
    h = harness
    template = await _created(h, "Thanks", "Thank you!")
    _, sender = h.service.keys.create("agent", "sender")
    headers = {"Authorization": f"Bearer {sender}"}
    add = await h.client.post(
        "/api/v1/templates", json={"name": "X", "language": "en", "body": "x"}, headers=headers
    )
    assert add.status_code == 403
    path = f"/api/v1/templates/{template['id']}"
    assert (await h.client.patch(path, json={"body": "y"}, headers=headers)).status_code == 403
    assert (await h.client.delete(path, headers=headers)).status_code == 403
    assert (await h.client.get(path, headers=headers)).json()["body"] == "Thank you!"
    rendered = await h.client.post(f"{path}/render", json={}, headers=headers)
    assert rendered.json()["text"] == "Thank you!"
    assert (await h.client.get("/api/v1/templates")).status_code == 401


async def test_rendering_for_a_request_fills_the_customer_and_counts(
    any_db_harness: Harness,
) -> None:
    """The request gives the customer's name and id; the prompt comes from the caller; the
    answer counts the rendered text as the message API would."""
    h = any_db_harness
    request_id = await _request_of_customer(h, "Ada")
    template = await _created(h, "Order shipped", SHIPPED)
    response = await _render(
        h, template["id"], request_id=request_id, variables={"order number": "A-42"}
    )
    assert response.status_code == 200, response.text
    text = f"Hello Ada, order A-42 ships today. Ref {request_id}"
    assert response.json() == {
        "text": text,
        "encoding": "gsm7",
        "segments": 1,
        "characters": len(text),
    }
    by_customer = await _render(
        h,
        (await _created(h, "Number", "Your number is {customer.number} € {{ok}}"))["id"],
        customer="06 1234 5678",
    )
    assert by_customer.json()["text"] == f"Your number is {CUSTOMER} € {{ok}}"
    # €, { and } take two GSM-7 septets each.
    assert by_customer.json()["characters"] == len(by_customer.json()["text"]) + 3


async def test_a_missing_variable_is_refused_naming_it(harness: Harness) -> None:
    """Without a request there is no customer name; an unfilled prompt is named as asked."""
    h = harness
    template = await _created(h, "Order shipped", SHIPPED)
    response = await _render(h, template["id"], variables={"order number": "A-1"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "missing_variable"
    assert "{customer.name}" in error["message"]
    assert error["fields"][0]["field"] == "variables.customer.name"
    filled = {"customer.name": "Ada", "request.id": "R1"}
    response = await _render(h, template["id"], variables=filled)
    assert response.json()["error"]["fields"][0]["field"] == "variables.order number"
    assert "'order number'" in response.json()["error"]["message"]
    blank = await _render(h, template["id"], variables={**filled, "order number": "  "})
    assert blank.status_code == 422
    typo = await _render(h, template["id"], variables={**filled, "order nr": "1"})
    assert typo.status_code == 422 and "order nr" in typo.json()["error"]["message"]
    done = await _render(h, template["id"], variables={**filled, "order number": "{x}"})
    assert done.json()["text"] == "Hello Ada, order {x} ships today. Ref R1"
    missing = await _render(h, template["id"], request_id="01NOSUCHREQUEST00000000000")
    assert missing.status_code == 422
    assert missing.json()["error"]["fields"][0]["field"] == "request_id"
