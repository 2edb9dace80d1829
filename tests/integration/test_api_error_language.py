"""422 answers speak the caller's language: Dutch when Accept-Language prefers nl (or the
logged-in user reads Dutch), English otherwise; the JSON shape and field names never change."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.harness import Harness
from tests.support.webui import create_user, log_in

DUTCH = {"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"}
ENGLISH_FIRST = {"Accept-Language": "en-GB,en;q=0.9,nl;q=0.5"}


async def _post(h: Harness, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return await h.client.post(path, json=body, headers={**h.headers, **headers})


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_request_validation_errors_are_dutch_for_dutch_callers(harness: Harness) -> None:
    """A missing field and a too long one: Dutch messages and summary, English by default and
    when English is preferred, the same codes and fields either way."""
    h = harness
    body = {"name": "x" * 1001, "language": "en"}
    dutch = _error(await _post(h, "/api/v1/templates", body, DUTCH))
    english = _error(await _post(h, "/api/v1/templates", body, {}))
    preferred = _error(await _post(h, "/api/v1/templates", body, ENGLISH_FIRST))

    assert english == preferred
    assert set(dutch) == set(english) == {"code", "message", "fields"}
    assert dutch["code"] == english["code"] == "invalid_request"
    assert [f["field"] for f in dutch["fields"]] == [f["field"] for f in english["fields"]]
    messages = {f["field"]: f["message"] for f in dutch["fields"]}
    assert messages == {
        "name": "Tekst mag maximaal 1000 tekens bevatten",
        "body": "Dit veld is verplicht.",
    }
    assert dutch["message"] == (
        "name: Tekst mag maximaal 1000 tekens bevatten; body: Dit veld is verplicht."
    )
    assert {f["field"]: f["message"] for f in english["fields"]} == {
        "name": "String should have at most 1000 characters",
        "body": "This field is required.",
    }


async def test_our_own_refusals_are_dutch_for_dutch_callers(any_db_harness: Harness) -> None:
    """A taken name (a refusal of the templates), a missing prompt and an unknown customer
    (refusals the API words itself) are translated with their values kept."""
    h = any_db_harness
    body = {"name": "Shipped", "language": "en", "body": "Order {prompt:order number}"}
    created = await _post(h, "/api/v1/templates", body, {})
    assert created.status_code == 201, created.text
    template_id = created.json()["id"]

    taken = _error(await _post(h, "/api/v1/templates", body, DUTCH))
    assert taken["code"] == "invalid_field"
    assert taken["message"] == (
        "Er bestaat al een sjabloon 'Shipped' in de taal 'en'; kies een andere naam of bewerk "
        "dat sjabloon."
    )
    assert taken["fields"] == [{"field": "name", "message": taken["message"]}]
    english = _error(await _post(h, "/api/v1/templates", body, {}))
    assert english["message"].startswith("A template named 'Shipped' already exists")

    render = f"/api/v1/templates/{template_id}/render"
    missing = _error(await _post(h, render, {}, DUTCH))
    assert missing["code"] == "missing_variable"
    assert missing["message"] == "Vul 'order number' in: het sjabloon vraagt erom."
    assert missing["fields"] == [{"field": "variables.order number", "message": missing["message"]}]
    unknown = _error(await _post(h, render, {"customer": "+31600000000"}, DUTCH))
    assert unknown["code"] == "not_found"
    assert unknown["fields"] == [
        {"field": "customer", "message": "Er is geen klant '+31600000000'."}
    ]
    english_unknown = _error(await _post(h, render, {"customer": "+31600000000"}, {}))
    assert english_unknown["message"] == "There is no customer '+31600000000'."


async def test_a_logged_in_users_language_wins_over_the_browsers(harness: Harness) -> None:
    """A session call of a Dutch user is answered in Dutch although the browser asks English."""
    create_user(harness.service, "anna", "agent", language="nl")
    async with harness.browser() as browser:
        await log_in(browser, "anna")
        answer = await browser.get(
            "/requests/01ARZ3NDEKTSV4RRFFQ69G5FAV/templates",
            params={"q": "x" * 201},
            headers=ENGLISH_FIRST,
        )
    error = _error(answer)
    assert error["fields"] == [{"field": "q", "message": "Tekst mag maximaal 200 tekens bevatten"}]


async def test_refusals_of_other_resources_are_translated_too(harness: Harness) -> None:
    """A group's refusal (its own msgid) in Dutch; the caller's q=-weighted choice counts."""
    h = harness
    assert (await _post(h, "/api/v1/groups", {"name": "Billing"}, {})).status_code == 201
    taken = _error(
        await _post(h, "/api/v1/groups", {"name": "billing"}, {"Accept-Language": "en;q=0.4, nl"})
    )
    assert taken["fields"] == [
        {"field": "name", "message": "Er is al een groep met de naam 'Billing'."}
    ]
