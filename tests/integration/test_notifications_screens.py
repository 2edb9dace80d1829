"""My settings (/me) and the e-mail section of the SMS configuration screen, without a
browser's scripts: forms, refusals in the user's language, the secret password, Send test
e-mail against a real SMTP server."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import sqlalchemy as sa

from smsdesk.store.tables import notifications
from smsdesk.testing import free_port
from tests.support.harness import Harness
from tests.support.smtp import SmtpInbox
from tests.support.webui import create_user, csrf_of, log_in

SETTINGS = "/preferences/general/sms"


def errors_of(html: str, field: str) -> list[str]:
    """The error lines shown in one field's block (up to the next field)."""
    start = html.index(f'data-field="{field}"')
    end = html.find('data-field="', start + 1)
    return re.findall(r'class="field-error"[^>]*>([^<]*)<', html[start : end if end > 0 else None])


async def post(client: httpx.AsyncClient, page: str, path: str, form: dict[str, Any]) -> Any:
    token = csrf_of((await client.get(page)).text)
    return await client.post(path, data={"csrf_token": token, **form})


@asynccontextmanager
async def agent(h: Harness, name: str, language: str = "en") -> AsyncIterator[httpx.AsyncClient]:
    """A browser logged in as a new agent."""
    create_user(h.service, name, "agent", language=language)
    async with h.browser() as client:
        await log_in(client, name)
        yield client


async def test_an_agent_sets_contact_details_and_choices_on_my_settings(harness: Harness) -> None:
    """The number is stored as typed nationally, normalised; the choices come back checked;
    the time zone, unset at first, is left for the browser to fill in."""
    h = harness
    await h.configure(default_country_code="+31")
    async with agent(h, "anna") as anna:
        first = await anna.get("/me")
        assert first.status_code == 200
        assert 'data-browser-default="on"' in first.text
        assert 'href="/me"' in first.text  # the link in the page header
        saved = await post(
            anna,
            "/me",
            "/me",
            {
                "email": "anna@example.org",
                "phone": "06-1234 5678",
                "time_zone": "Europe/Amsterdam",
                "notify.request.assigned.email": "on",
                "notify.request.assigned.sms": "on",
                "notify.request.customer_answered.email": "on",
            },
        )
        assert saved.status_code == 303
        page = (await anna.get(saved.headers["location"])).text
    entries = (await h.get("/api/v1/audit?action=user.contact_changed")).json()
    assert entries["entries"][0]["actor"]["name"] == "anna"
    assert "anna@example.org" not in json.dumps(entries)  # field names only
    contact = h.service.users.contact("anna")
    assert (contact.email, contact.phone, contact.time_zone) == (
        "anna@example.org",
        "+31612345678",
        "Europe/Amsterdam",
    )
    assert json.loads(contact.notify) == {
        "request.assigned": ["email", "sms"],
        "request.customer_answered": ["email"],
    }
    assert 'id="notice"' in page and 'data-browser-default="off"' in page
    assert 'name="notify.request.assigned.sms" value="on"' in page
    checked = re.findall(
        r'name="(notify\.[^"]+)" value="on"\s+aria-describedby="[^"]+"\s+checked', page
    )
    assert sorted(checked) == [
        "notify.request.assigned.email",
        "notify.request.assigned.sms",
        "notify.request.customer_answered.email",
    ]


async def test_my_settings_refuses_bad_values_in_dutch_and_keeps_what_was_typed(
    harness: Harness,
) -> None:
    """A bad address, a number that is no number, SMS chosen without a number: each refusal
    beside its field in the user's language, nothing stored."""
    h = harness
    async with agent(h, "bram", language="nl") as bram:
        bad = await post(
            bram,
            "/me",
            "/me",
            {"email": "bram-at-example", "phone": "12ab", "time_zone": "Mars/Base"},
        )
        assert bad.status_code == 422
        assert errors_of(bad.text, "email") == [
            "Vul een e-mailadres in, bijvoorbeeld anna@example.org."
        ]
        assert errors_of(bad.text, "phone")
        assert errors_of(bad.text, "time_zone") == [
            "Kies een tijdzone uit de lijst, bijv. Europe/Amsterdam."
        ]
        assert 'value="bram-at-example"' in bad.text
        no_phone = await post(
            bram, "/me", "/me", {"email": "bram@example.org", "notify.request.assigned.sms": "on"}
        )
        assert no_phone.status_code == 422
        assert errors_of(no_phone.text, "phone") == [
            "Vul uw mobiele nummer in om meldingen per sms te krijgen."
        ]
        assert "Mijn instellingen" in no_phone.text
    assert h.service.users.contact("bram").email is None


async def test_the_email_section_keeps_the_password_secret_and_sends_a_test_email(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """The administrator saves the e-mail settings; the page never shows the password, a blank
    password keeps it; Send test e-mail reaches the server, and a server that is down is
    reported with its address."""
    h = harness
    secret = "smtp-pass-never-shown"
    with SmtpInbox() as inbox:
        form = {
            "email.host": "127.0.0.1",
            "email.port": str(inbox.port),
            "email.security": "none",
            "email.username": "",
            "email.password": secret,
            "email.sender": "desk@example.org",
        }
        saved = await post(admin, SETTINGS, SETTINGS, form)
        assert saved.status_code == 303, saved.text
        page = (await admin.get(SETTINGS)).text
        assert secret not in page
        assert 'data-field="email.password"' in page and 'data-secret-state="set"' in page
        again = await post(admin, SETTINGS, SETTINGS, {**form, "email.password": ""})
        assert again.status_code == 303
        assert h.service.settings.load().email.password.get_secret_value() == secret

        tried = await post(
            admin, SETTINGS, f"{SETTINGS}/email-test", {**form, "email_test_to": "me@example.org"}
        )
        assert tried.status_code == 200
        assert 'data-email-test="sent"' in tried.text and secret not in tried.text
        (mail,) = inbox.received()
        assert mail.rcpt_tos == ["me@example.org"]
        assert str(mail.message["Subject"]) == "smsdesk test e-mail"

    down = free_port()
    refused = await post(
        admin,
        SETTINGS,
        f"{SETTINGS}/email-test",
        {**form, "email.port": str(down), "email_test_to": "me@example.org"},
    )
    assert 'data-email-test="refused"' in refused.text
    assert f"127.0.0.1:{down}" in refused.text and secret not in refused.text
    no_sender = await post(admin, SETTINGS, SETTINGS, {**form, "email.sender": ""})
    assert no_sender.status_code == 422
    assert errors_of(no_sender.text, "email.sender") == [
        "A sender address is needed to send e-mail; enter one."
    ]


async def test_my_settings_lists_my_notifications_with_the_error_of_a_dead_one(
    harness: Harness,
) -> None:
    """A notification that could not be sent is listed as not sent with its last error."""
    h = harness
    async with agent(h, "anna") as anna:
        user_id = h.service.users.contact("anna").user_id
        with h.service.engine.begin() as conn:
            conn.execute(
                notifications.insert().values(
                    id="01HZZZZZZZZZZZZZZZZZZZZZZZ",
                    user_id=user_id,
                    event="request.assigned",
                    channel="email",
                    request_id="01HREQUESTREQUESTREQUEST00",
                    subject="Request assigned to you: Parcel",
                    body="...",
                    status="dead",
                    attempts=8,
                    next_attempt_at=1.0,
                    last_error="Could not send through mail.example.org:587: refused",
                    created_at=1.0,
                )
            )
        page = (await anna.get("/me")).text
    assert 'data-status="dead"' in page
    assert "Last error: Could not send through mail.example.org:587: refused" in page
    assert "Request assigned to you: Parcel" in page
    with h.service.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(notifications)).scalar() == 1


async def test_the_browsers_time_zone_is_kept_for_a_user_without_one(harness: Harness) -> None:
    """Pages of a user without a time zone send the browser's; it is stored once, never over
    a chosen one; a made-up zone and a missing CSRF token are refused."""
    h = harness
    async with agent(h, "anna") as anna:
        page = (await anna.get("/requests")).text
        assert 'id="time-zone-default"' in page
        token = csrf_of((await anna.get("/me")).text)
        refused = await anna.post("/me/time-zone", data={"time_zone": "Europe/Amsterdam"})
        assert refused.status_code == 403
        bad = await anna.post(
            "/me/time-zone", data={"time_zone": "Mars/Base"}, headers={"X-CSRF-Token": token}
        )
        assert bad.status_code == 422
        for zone in ("America/New_York", "Europe/Amsterdam"):
            kept = await anna.post(
                "/me/time-zone", data={"time_zone": zone}, headers={"X-CSRF-Token": token}
            )
            assert kept.status_code == 204
        assert h.service.users.contact("anna").time_zone == "America/New_York"
        assert 'id="time-zone-default"' not in (await anna.get("/requests")).text
