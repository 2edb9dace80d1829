"""The SMS configuration screen without a browser's scripts: forms, errors, secrets, Send test."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in

PATH = "/preferences/general/sms"
INTELECOM = "module_settings.original_intelecom."


def errors_of(html: str, field: str) -> list[str]:
    """The error lines shown in one field's block (up to the next field)."""
    start = html.index(f'data-field="{field}"')
    end = html.find('data-field="', start + 1)
    return re.findall(r'class="field-error">([^<]*)<', html[start : end if end > 0 else None])


def general(**changes: str) -> dict[str, str]:
    form = {
        "module": "original_intelecom",
        "default_country_code": "+31",
        "sender": "Support",
        "plugin_configuration": "",
    }
    form.update(changes)
    return form


async def post(client: httpx.AsyncClient, path: str, form: dict[str, Any]) -> httpx.Response:
    token = csrf_of((await client.get(PATH)).text)
    return await client.post(path, data={"csrf_token": token, **form})


async def test_invalid_values_are_shown_per_field_and_nothing_is_stored(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    answer = await post(
        admin,
        PATH,
        general(
            sender="A sender name far too long",
            plugin_configuration="intele_serviceId = 7\nnot a line\ntwilio_account_sid = AC1",
            **{f"{INTELECOM}sms_priority": "7", f"{INTELECOM}username": "acme"},
        ),
    )
    assert answer.status_code == 422
    html = answer.text
    assert any("11" in e for e in errors_of(html, "sender"))
    plugin_errors = errors_of(html, "plugin_configuration")
    assert any("Line 2" in e for e in plugin_errors)
    assert any("twilio_account_sid" in e for e in plugin_errors)
    assert errors_of(html, f"{INTELECOM}sms_priority")
    assert 'value="A sender name far too long"' in html
    assert 'value="acme"' in html
    assert (await harness.get("/api/v1/settings")).json()["module"] == "simulator"


async def test_errors_are_in_dutch_for_a_dutch_user(harness: Harness) -> None:
    create_user(harness.service, "anna", "admin", language="nl")
    async with harness.browser() as client:
        await log_in(client, "anna")
        answer = await post(client, PATH, general(sender="A sender name far too long"))
    assert "Niets" in answer.text or "niets" in answer.text
    [message] = errors_of(answer.text, "sender")
    assert "11" in message and "characters" not in message


async def test_secrets_are_kept_masked_and_never_sent_back(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    form = general(**{f"{INTELECOM}password": "s3cret-Pa55", f"{INTELECOM}service_id": "42"})
    saved = await post(admin, PATH, form)
    assert saved.status_code == 303
    page = (await admin.get(PATH)).text
    assert "s3cret-Pa55" not in page
    assert 'data-secret-state="set"' in page
    stored = harness.service.settings.load().module_settings["original_intelecom"]
    assert stored["password"].get_secret_value() == "s3cret-Pa55"

    # A blank password keeps the stored one; a failed save does not echo a typed one.
    await post(admin, PATH, general(**{f"{INTELECOM}password": "", f"{INTELECOM}username": "x"}))
    stored = harness.service.settings.load().module_settings["original_intelecom"]
    assert stored["password"].get_secret_value() == "s3cret-Pa55"
    failed = await post(admin, PATH, general(sender="!!", **{f"{INTELECOM}password": "new-0ne!"}))
    assert failed.status_code == 422
    assert "new-0ne!" not in failed.text
    assert "type it once more" in failed.text


async def test_every_form_refuses_a_missing_or_wrong_csrf_token(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    for path in (PATH, f"{PATH}/test"):
        for token in ({}, {"csrf_token": "forged"}):
            answer = await admin.post(
                path, data={**token, **general(sender="Changed", test_to="+31612345678")}
            )
            assert answer.status_code == 403, path
    assert harness.service.settings.load().sender != "Changed"


async def test_an_agent_gets_403_on_the_configuration(harness: Harness) -> None:
    create_user(harness.service, "agent", "agent")
    async with harness.browser() as client:
        await log_in(client, "agent")
        assert (await client.get(PATH)).status_code == 403
        assert (await client.post(PATH, data=general())).status_code == 403
        dashboard = await client.get("/dashboard")
    assert PATH not in dashboard.text


async def test_send_test_without_scripts_shows_the_result_and_keeps_the_input(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    form = general(
        module="simulator",
        test_to="0612345678",
        test_text="Test from the screen",
        **{"module_settings.simulator.report_delay": "0.02"},
    )
    answer = await post(admin, f"{PATH}/test", form)
    assert answer.status_code == 200
    assert 'data-test-outcome="accepted"' in answer.text
    assert 'value="0612345678"' in answer.text
    assert "Test from the screen" in answer.text
    assert harness.service.settings.load().module == "simulator"  # unsaved: as it was

    refused = await post(admin, f"{PATH}/test", {**form, "test_to": "12"})
    assert 'data-test-outcome="invalid_input"' in refused.text


async def test_send_test_follows_the_message_to_its_report(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    form = general(
        module="simulator",
        test_to="+31612345678",
        test_text="Hi",
        **{"module_settings.simulator.report_delay": "0.02"},
    )
    token = csrf_of((await admin.get(PATH)).text)
    answer = await admin.post(
        f"{PATH}/test",
        data={"csrf_token": token, **form},
        headers={"Accept": "application/json"},
    )
    result = answer.json()
    assert result["outcome"] == "accepted"
    message_id = result["message"]["id"]

    async def status() -> str:
        state = await admin.get(f"{PATH}/test/{message_id}", headers={"Accept": "application/json"})
        return str(state.json()["status"])

    await harness.wait_for(message_id, "delivered")
    assert await status() == "delivered"
    unknown = await admin.get(f"{PATH}/test/nope", headers={"Accept": "application/json"})
    assert unknown.status_code == 404
