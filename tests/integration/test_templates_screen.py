"""The reply templates screen (/templates), used by an administrator in a browser."""

from __future__ import annotations

import html
import re

import httpx

from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in

SHIPPED = "Hello {customer.name},\norder {prompt:order number} ships today."


async def _submit(
    client: httpx.AsyncClient, form_path: str, action: str, **fields: str
) -> httpx.Response:
    page = await client.get(form_path)
    assert page.status_code == 200, page.text
    return await client.post(action, data={"csrf_token": csrf_of(page.text), **fields})


def _field_error(page: str, field: str) -> str:
    found = re.search(rf'id="template-{field}-error">([^<]*)<', page)
    assert found is not None, f"no error beside {field}"
    return html.unescape(found.group(1))


async def test_an_administrator_adds_searches_edits_and_deletes(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """The whole round: add, find by text and language, change, delete."""
    added = await _submit(
        admin, "/templates/new", "/templates", name="Order shipped", language="en", body=SHIPPED
    )
    assert added.status_code == 303 and added.headers["location"] == "/templates?notice=added"
    await _submit(
        admin, "/templates/new", "/templates", name="Verzonden", language="nl", body="Hallo!"
    )
    listed = await admin.get("/templates?notice=added")
    assert "The template was added." in listed.text
    assert "Order shipped" in listed.text and "Asks for: order number" in listed.text

    found = await admin.get("/templates", params={"q": "SHIPS today"})
    assert "Order shipped" in found.text and "Verzonden" not in found.text
    dutch = await admin.get("/templates", params={"language": "nl"})
    assert "Verzonden" in dutch.text and "Order shipped" not in dutch.text
    none = await admin.get("/templates", params={"q": "nothing like this"})
    assert 'id="no-templates"' in none.text

    [template_id] = re.findall(r'href="/templates/([0-9A-Z]{26})"[^>]*>Order shipped', listed.text)
    edit_path = f"/templates/{template_id}"
    form = await admin.get(edit_path)
    assert html.unescape(re.search(r"<textarea[^>]*>([^<]*)<", form.text).group(1)) == SHIPPED  # type: ignore[union-attr]
    saved = await _submit(
        admin, edit_path, edit_path, name="Shipped", language="en", body="Shipped\r\nbye"
    )
    assert saved.headers["location"] == "/templates?notice=saved"
    shown = (await harness.get(f"/api/v1/templates/{template_id}")).json()
    assert (shown["name"], shown["body"]) == ("Shipped", "Shipped\nbye")

    deleted = await _submit(admin, edit_path, f"{edit_path}/delete")
    assert deleted.headers["location"] == "/templates?notice=deleted"
    assert (await admin.get(edit_path)).status_code == 404


async def test_refusals_are_shown_beside_their_field_with_the_text_kept(
    admin: httpx.AsyncClient,
) -> None:
    """An unknown variable is named with its position under the text; nothing is saved."""
    body = "Dear {customer.nmae}, thanks"
    refused = await _submit(
        admin, "/templates/new", "/templates", name="Typo", language="en", body=body
    )
    assert refused.status_code == 422
    assert "{customer.nmae}" in _field_error(refused.text, "body")
    assert "position 6" in _field_error(refused.text, "body")
    assert html.escape(body, quote=False) in refused.text
    bad_language = await _submit(
        admin, "/templates/new", "/templates", name="X", language="english", body="Hi"
    )
    assert "'english'" in _field_error(bad_language.text, "language")
    await _submit(admin, "/templates/new", "/templates", name="Same", language="en", body="Hi")
    taken = await _submit(
        admin, "/templates/new", "/templates", name="same", language="en", body="Hi"
    )
    assert "already exists" in _field_error(taken.text, "name")
    assert "Typo" not in (await admin.get("/templates")).text


async def test_dutch_administrators_read_the_screen_and_refusals_in_dutch(
    harness: Harness,
) -> None:
    create_user(harness.service, "beheerder", "admin", "nl")
    async with harness.browser() as client:
        await log_in(client, "beheerder")
        page = await client.get("/templates/new")
        assert "Nieuw antwoordsjabloon" in page.text and "Sjabloon opslaan" in page.text
        refused = await _submit(
            client, "/templates/new", "/templates", name="Fout", language="nl", body="Hoi {naam"
        )
        assert _field_error(refused.text, "body") == (
            "De { op positie 5 wordt niet gesloten; schrijf {{ voor een accolade als teken."
        )
        unknown = await _submit(
            client, "/templates/new", "/templates", name="Fout", language="nl", body="Hoi {naam}"
        )
        assert _field_error(unknown.text, "body").startswith("Onbekende variabele {naam}")


async def test_agents_may_not_open_the_screen_and_forms_need_the_csrf_token(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    create_user(harness.service, "agent", "agent")
    async with harness.browser() as client:
        await log_in(client, "agent")
        assert (await client.get("/templates")).status_code == 403
        assert 'href="/templates"' not in (await client.get("/requests")).text
    assert 'href="/templates"' in (await admin.get("/requests")).text
    forged = await admin.post("/templates", data={"name": "X", "language": "en", "body": "x"})
    assert forged.status_code == 403
    assert "No reply templates yet." in (await admin.get("/templates")).text
