"""Sending with a reply template through the message API: rendered, counted and refused by name."""

from __future__ import annotations

from typing import Any

from tests.support.harness import Harness

ADA = "+31612345678"
UNKNOWN = "+31687654321"


async def _template(h: Harness, name: str, language: str, body: str) -> dict[str, Any]:
    response = await h.post("/api/v1/templates", {"name": name, "language": language, "body": body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _text_of(h: Harness, message_id: str) -> str:
    return str((await h.get(f"/api/v1/messages/{message_id}")).json()["text"])


async def test_a_send_with_a_template_carries_the_rendered_text(any_db_harness: Harness) -> None:
    """The recipient's customer gives the name and language; the prompt comes from variables;
    the message is counted as the rendered text."""
    h = any_db_harness
    await h.configure(default_country_code="+31")
    await h.post("/api/v1/customers", {"name": "Ada", "numbers": [ADA], "language": "nl"})
    await _template(h, "Shipped", "en", "Hi {customer.name}, order {prompt:order} shipped €")
    await _template(h, "Shipped", "nl", "Hoi {customer.name}, order {prompt:order} is onderweg")
    sent = await h.post(
        "/api/v1/messages",
        {"to": "06 1234 5678", "template": "Shipped", "variables": {"order": "A-7"}},
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["to"] == ADA
    assert await _text_of(h, sent.json()["id"]) == "Hoi Ada, order A-7 is onderweg"

    english = await h.post(
        "/api/v1/messages",
        {"to": ADA, "template": "shipped", "language": "en", "variables": {"order": "A-8"}},
    )
    assert english.status_code == 201, english.text
    assert english.json()["encoding"] == "gsm7"
    assert await _text_of(h, english.json()["id"]) == "Hi Ada, order A-8 shipped €"


async def test_a_missing_variable_is_refused_with_a_422_naming_it(harness: Harness) -> None:
    """A number that is nobody's has no customer name: nothing is queued, the name is given;
    the caller may give the value itself."""
    h = harness
    template = await _template(h, "Greeting", "en", "Dear {customer.name}, see {prompt:link}")
    refused = await h.post(
        "/api/v1/messages",
        {"to": UNKNOWN, "template": template["id"], "variables": {"link": "x.example"}},
    )
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "missing_variable"
    assert error["fields"] == [{"field": "variables.customer.name", "message": error["message"]}]
    assert "{customer.name}" in error["message"]
    assert (await h.get("/api/v1/messages")).json()["messages"] == []

    no_prompt = await h.post(
        "/api/v1/messages",
        {"to": UNKNOWN, "template": template["id"], "variables": {"customer.name": "Bo"}},
    )
    assert no_prompt.json()["error"]["fields"][0]["field"] == "variables.link"
    given = await h.post(
        "/api/v1/messages",
        {
            "to": UNKNOWN,
            "template": template["id"],
            "variables": {"customer.name": "Bo", "link": "x.example"},
        },
    )
    assert given.status_code == 201, given.text
    assert await _text_of(h, given.json()["id"]) == "Dear Bo, see x.example"


async def test_text_and_template_go_alone(harness: Harness) -> None:
    h = harness
    await _template(h, "Hi", "en", "Hi")
    both = await h.post("/api/v1/messages", {"to": ADA, "text": "x", "template": "Hi"})
    assert both.status_code == 422
    neither = await h.post("/api/v1/messages", {"to": ADA})
    assert neither.status_code == 422
    unknown = await h.post("/api/v1/messages", {"to": ADA, "template": "Nope"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["fields"][0]["field"] == "template"


async def test_a_batch_refuses_only_the_messages_missing_a_value(harness: Harness) -> None:
    """One template to a list of numbers: a number without a customer is refused by name,
    the others are sent with their own customer's name."""
    h = harness
    await h.post("/api/v1/customers", {"name": "Ada", "numbers": [ADA]})
    await _template(h, "Reminder", "en", "{customer.name}: your appointment is {prompt:when}.")
    answer = await h.post(
        "/api/v1/messages/batch",
        {"to": [ADA, UNKNOWN], "template": "Reminder", "variables": {"when": "Monday"}},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    first, second = body["results"]
    assert await _text_of(h, first["message"]["id"]) == "Ada: your appointment is Monday."
    assert second["accepted"] is False
    assert second["error"]["fields"][0]["field"] == "variables.customer.name"
