"""The mailing screens (/mailings), used by administrators in English and in Dutch: a draft is
made, filled from a CSV file, checked, previewed, tested and sent, and every refusal is shown
beside its field in the reader's language."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.harness import Harness
from tests.support.screens import english_sentences
from tests.support.webui import create_user, csrf_of, log_in, page_csrf

CSV = "number;first_name\n+31612345601;Ada\n+31612345602;Bob\nnot a number;Cy\n+31612345601;Ada\n"
TEXT = "Hi {first_name}, our shop opens at 9."


@pytest.fixture
async def dutch(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """A browser logged in as a Dutch administrator."""
    create_user(harness.service, "beheer", "admin", "nl")
    async with harness.browser() as client:
        await log_in(client, "beheer")
        yield client


@pytest.fixture
async def any_db_admin(any_db_harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """A browser logged in as an administrator, on each database the suite runs against."""
    create_user(any_db_harness.service, "admin", "admin")
    async with any_db_harness.browser() as client:
        await log_in(client, "admin")
        yield client


def draft_form(**changes: str) -> dict[str, str]:
    fields = {"name": "Opening", "content": "text", "text": TEXT, "priority": "3"}
    fields["replies"] = "request"
    fields["override_consent"] = "on"
    return {**fields, **changes}


async def make_draft(client: httpx.AsyncClient, **changes: str) -> str:
    token = await page_csrf(client, "/mailings/new")
    made = await client.post("/mailings", data={"csrf_token": token, **draft_form(**changes)})
    assert made.status_code == 303, made.text
    found = re.fullmatch(r"/mailings/(\w+)/recipients\?notice=saved", made.headers["location"])
    assert found is not None, made.headers["location"]
    return found.group(1)


async def upload(client: httpx.AsyncClient, mailing_id: str, data: str) -> httpx.Response:
    token = await page_csrf(client, f"/mailings/{mailing_id}/recipients")
    return await client.post(
        f"/mailings/{mailing_id}/recipients/csv",
        data={"csrf_token": token},
        files={"file": ("people.csv", data.encode(), "text/csv")},
    )


def error_at(page: str, field: str) -> str:
    found = re.search(rf'id="mailing-{field}-error">([^<]*)<', page)
    assert found is not None, f"no error beside {field}"
    return html.unescape(found.group(1))


def figure(page: str, key: str, attribute: str = "data-check") -> int:
    found = re.search(rf'{attribute}="{key}"><dt>[^<]*</dt><dd>([\d.,]+)</dd>', page)
    assert found is not None, f"no figure {key}"
    return int(re.sub(r"\D", "", found.group(1)))


async def test_a_draft_is_filled_from_csv_checked_tested_and_sent(
    any_db_harness: Harness, any_db_admin: httpx.AsyncClient
) -> None:
    """From the form to delivered: the add report counts each check result with reasons,
    the summary counts the SMS, the preview fills in the row's column, the test is queued,
    and after Start the statistics show both recipients delivered."""
    harness, admin = any_db_harness, any_db_admin
    await harness.configure(default_country_code="+31")
    mailing_id = await make_draft(admin)
    report = await upload(admin, mailing_id, CSV)
    assert report.status_code == 200, report.text
    counts = {k: figure(report.text, k) for k in ("valid", "invalid", "duplicate", "total")}
    assert counts == {"valid": 2, "invalid": 1, "duplicate": 1, "total": 4}
    assert "is also on line 2" in html.unescape(report.text)
    assert "{first_name}" in report.text  # the column offered for the text

    summary = await admin.get(f"/mailings/{mailing_id}/summary")
    assert figure(summary.text, "messages", "data-figure") == 2
    assert figure(summary.text, "segments", "data-figure") == 2
    shown = await admin.get(f"/mailings/{mailing_id}/preview", params={"number": "0612345602"})
    assert "Hi Bob, our shop opens at 9." in shown.text

    token = csrf_of(summary.text)
    # A number outside the list (one's own) takes the first valid row's {first_name}.
    own = await admin.post(
        f"/mailings/{mailing_id}/test", data={"csrf_token": token, "number": "+31612345699"}
    )
    assert "Hi Ada, our shop opens at 9." in own.text
    assert "filled in with the values of line 2" in own.text
    tested = await admin.post(
        f"/mailings/{mailing_id}/test", data={"csrf_token": token, "number": "+31612345602"}
    )
    assert "The test SMS to +31612345602 is queued." in tested.text
    started = await admin.post(f"/mailings/{mailing_id}/start", data={"csrf_token": token})
    assert started.headers["location"] == f"/mailings/{mailing_id}?notice=start"

    async def finished() -> tuple[str, int]:
        part = (await admin.get(f"/mailings/{mailing_id}/figures")).text
        status = re.search(r'data-status="(\w+)"', part)
        return (status.group(1) if status else ""), figure(part, "delivered", "data-figure")

    for _ in range(500):
        if await finished() == ("done", 2):
            break
        await harness.idle_scans(1)
    assert await finished() == ("done", 2)
    listed = await admin.get("/mailings", params={"status": "done"})
    assert f'data-mailing="{mailing_id}"' in listed.text
    page = await admin.get(f"/mailings/{mailing_id}", params={"status": "delivered"})
    assert page.text.count('data-status="delivered"') == 2
    assert 'class="chart chart-bars"' in page.text  # deliveries over time
    exported = await admin.get(f"/mailings/{mailing_id}/recipients.csv")
    assert exported.text.count("delivered") == 2 and "not a number" in exported.text


async def test_the_form_shows_refusals_beside_their_fields_in_english(
    admin: httpx.AsyncClient,
) -> None:
    """Each refusal stands at its own field, and what was typed is kept."""
    token = await page_csrf(admin, "/mailings/new")
    cases = {
        "name": ({"name": "  "}, "The mailing's name is empty; enter a name."),
        "window_to": (
            {"window_days": "mon", "window_from": "20:00", "window_to": "09:00"},
            "The send window closes at 09:00, before it opens at 20:00; a window cannot span "
            "midnight.",
        ),
        "throttle_per_minute": (
            {"throttle_per_minute": "lots"},
            "'lots' is not a number; enter digits, such as 600.",
        ),
        "text": ({"text": "Hi {first name}"}, "position 4"),
        "sender": ({"sender": "Way too long a name"}, "at most 11"),
    }
    for field, (changes, expected) in cases.items():
        refused = await admin.post("/mailings", data={"csrf_token": token, **draft_form(**changes)})
        assert refused.status_code == 422, field
        assert expected in error_at(refused.text, field), field
    kept = await admin.post(
        "/mailings", data={"csrf_token": token, **draft_form(name="", tags="spring, sale")}
    )
    assert 'value="spring, sale"' in kept.text


async def test_refusals_read_in_dutch(harness: Harness, dutch: httpx.AsyncClient) -> None:
    """A Dutch administrator gets the field errors, the check reasons, a file without a number
    column and a step the status does not allow in Dutch."""
    await harness.configure(default_country_code="+31")
    token = await page_csrf(dutch, "/mailings/new")
    refused = await dutch.post(
        "/mailings",
        data={"csrf_token": token, **draft_form(name=" ", throttle_per_minute="0")},
    )
    assert error_at(refused.text, "name") == "De naam van de mailing is leeg; vul een naam in."
    window = await dutch.post(
        "/mailings",
        data={"csrf_token": token, **draft_form(window_days="mon", window_from="9 uur")},
    )
    assert (
        error_at(window.text, "window_from") == "'9 uur' is geen tijdstip; schrijf het als 09:00."
    )
    throttle = await dutch.post(
        "/mailings", data={"csrf_token": token, **draft_form(throttle_per_minute="0")}
    )
    assert "niet 0" in error_at(throttle.text, "throttle_per_minute")

    mailing_id = await make_draft(dutch, override_consent="off")
    report = await upload(dutch, mailing_id, CSV)
    text = html.unescape(report.text)
    assert "+31612345601 staat ook op regel 2." in text
    assert "Geen toestemming" in text and "Ongeldig nummer" in text
    no_column = await upload(dutch, mailing_id, "naam\nAda\n")
    assert no_column.status_code == 422
    assert "geen kolom met nummers" in html.unescape(no_column.text)
    empty = await upload(dutch, mailing_id, "")
    assert "Kies een CSV-bestand om te uploaden." in empty.text

    paused = await dutch.post(f"/mailings/{mailing_id}/pause", data={"csrf_token": token})
    assert paused.status_code == 422
    problem = re.search(r'id="mailing-problem">([^<]*)<', paused.text)
    assert problem is not None
    assert html.unescape(problem.group(1)) == (
        "Een mailing met status Concept kan niet: pauzeren; dat kan alleen bij status Verzenden."
    )
    missing_preview = await dutch.get(f"/mailings/{mailing_id}/preview", params={"number": ""})
    assert "Vul een mobiel nummer in." in missing_preview.text
    past = await dutch.post(
        f"/mailings/{mailing_id}/schedule",
        data={"csrf_token": token, "scheduled_at": "2001-01-01T09:00"},
    )
    assert past.status_code == 422 and "Kies een tijdstip in de toekomst." in past.text


async def test_pause_resume_and_cancel_from_the_mailings_page(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """A throttled mailing is paused, resumed and cancelled with its page's buttons; cancel
    leaves nothing waiting (a message already handed to the provider is sent)."""
    await harness.configure(default_country_code="+31")
    mailing_id = await make_draft(admin, throttle_per_minute="1", text="We open at 9.")
    numbers = "\n".join(f"+316123457{i:02d}" for i in range(5))
    await upload(admin, mailing_id, "number\n" + numbers + "\n")
    token = await page_csrf(admin, f"/mailings/{mailing_id}")
    await admin.post(f"/mailings/{mailing_id}/start", data={"csrf_token": token})
    page = await admin.get(f"/mailings/{mailing_id}")
    assert 'id="pause-mailing"' in page.text and 'data-poll="' in page.text
    paused = await admin.post(f"/mailings/{mailing_id}/pause", data={"csrf_token": token})
    assert paused.headers["location"] == f"/mailings/{mailing_id}?notice=pause"
    page = await admin.get(paused.headers["location"])
    assert 'id="resume-mailing"' in page.text and "data-poll" not in page.text
    resumed = await admin.post(f"/mailings/{mailing_id}/resume", data={"csrf_token": token})
    assert resumed.status_code == 303
    cancelled = await admin.post(f"/mailings/{mailing_id}/cancel", data={"csrf_token": token})
    # A message the dispatcher had already taken is sent; wait until none is in flight.
    await harness.idle_scans()
    page = await admin.get(cancelled.headers["location"])
    assert "The mailing is cancelled" in page.text
    assert figure(page.text, "queued", "data-figure") == 0
    keys = re.findall(r'data-figure="(\w+)"', page.text)
    shown = {k: figure(page.text, k, "data-figure") for k in keys}
    assert sum(shown.values()) == 5, shown


async def test_an_unknown_mailing_is_a_404_in_the_readers_language(
    dutch: httpx.AsyncClient,
) -> None:
    gone = await dutch.get("/mailings/01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert gone.status_code == 404
    assert "Deze mailing bestaat niet" in gone.text


async def test_every_mailing_page_reads_in_dutch(
    harness: Harness, dutch: httpx.AsyncClient
) -> None:
    """A Dutch administrator walks the mailing pages of a draft and of a sent mailing, with
    an add report and a preview, and meets no English sentence."""
    await harness.configure(default_country_code="+31")
    draft = await make_draft(dutch, text="Hallo {first_name}, wij openen om 9 uur.")
    rows = CSV.replace("not a number", "geen nummer")
    report = await upload(dutch, draft, rows)
    sent = await make_draft(dutch, text="Wij openen om 9 uur.")
    await upload(dutch, sent, rows)
    token = await page_csrf(dutch, f"/mailings/{sent}")
    await dutch.post(f"/mailings/{sent}/start", data={"csrf_token": token})
    pages = {"report": report}
    for path in (
        "/mailings",
        "/mailings/new",
        f"/mailings/{draft}",
        f"/mailings/{draft}/edit",
        f"/mailings/{draft}/recipients?notice=saved",
        f"/mailings/{draft}/summary",
        f"/mailings/{draft}/preview?number=%2B31612345601",
        f"/mailings/{sent}?notice=start",
        f"/mailings/{sent}/figures",
        f"/mailings/{sent}/summary",
    ):
        pages[path] = await dutch.get(path)
        assert pages[path].status_code == 200, path
    english = {
        path: found for path, page in pages.items() if (found := english_sentences(page.text))
    }
    assert not english, english


async def test_a_draft_is_scheduled_in_the_viewers_time_zone_for_their_own_number(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """The test box offers the user's own number; a start time is read in the user's time
    zone and shown back in it; recipients that will not be sent can be removed first."""
    await harness.configure(default_country_code="+31")
    harness.service.users.set_contact(
        "admin", {"phone": "+31612345690", "time_zone": "Europe/Amsterdam"}
    )
    mailing_id = await make_draft(admin, text="We open at 9.")
    await upload(admin, mailing_id, CSV)
    summary = await admin.get(f"/mailings/{mailing_id}/summary")
    assert 'name="number" value="+31612345690"' in summary.text
    assert "Europe/Amsterdam" in summary.text

    token = csrf_of(summary.text)
    removed = await admin.post(
        f"/mailings/{mailing_id}/recipients/remove", data={"csrf_token": token, "which": "invalid"}
    )
    assert "1 recipient was removed." in removed.text
    assert figure(removed.text, "total") == 3

    scheduled = await admin.post(
        f"/mailings/{mailing_id}/schedule",
        data={"csrf_token": token, "scheduled_at": "2030-05-12T09:00"},
    )
    assert scheduled.headers["location"] == f"/mailings/{mailing_id}?notice=schedule"
    shown = (await harness.get(f"/api/v1/mailings/{mailing_id}")).json()
    assert (shown["status"], shown["scheduled_at"][:19]) == ("scheduled", "2030-05-12T07:00:00")
    page = await admin.get(scheduled.headers["location"])
    assert "Scheduled for May 12, 2030 09:00:00 CEST." in page.text
    again = await admin.post(f"/mailings/{mailing_id}/unschedule", data={"csrf_token": token})
    assert again.headers["location"] == f"/mailings/{mailing_id}/summary?notice=unschedule"


async def test_customers_by_filter_and_pasted_numbers_are_added_and_checked(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """Customers chosen by language and tag get one recipient each, those without consent
    counted as such; pasted numbers are checked the same way."""
    await harness.configure(default_country_code="+31")
    made = {}
    for name, number, language, tags in (
        ("Anna", "+31612340001", "nl", ["vip"]),
        ("Bram", "+31612340002", "nl", []),
        ("Cleo", "+31612340003", "en", ["vip"]),
        ("Dirk", "+31612340004", "nl", ["vip"]),
    ):
        body = {"name": name, "numbers": [number], "language": language, "tags": tags}
        answer = await harness.post("/api/v1/customers", body)
        assert answer.status_code == 201, answer.text
        made[name] = answer.json()["id"]
    for name in ("Anna", "Bram", "Cleo"):
        given = await harness.client.put(
            f"/api/v1/mailings/consents/{made[name]}",
            json={"given": True, "source": "web form"},
            headers=harness.headers,
        )
        assert given.status_code == 200, given.text
    mailing_id = await make_draft(admin, text="Hallo {customer.name}", override_consent="off")
    token = await page_csrf(admin, f"/mailings/{mailing_id}/recipients")
    chosen = await admin.post(
        f"/mailings/{mailing_id}/recipients/customers",
        data={"csrf_token": token, "language": "nl", "tag": "VIP", "open_request": ""},
    )
    assert chosen.status_code == 200, chosen.text
    report = {k: figure(chosen.text, k) for k in ("valid", "no_consent", "total")}
    assert report == {"valid": 1, "no_consent": 1, "total": 2}  # Anna; Dirk gave no consent

    bad_date = await admin.post(
        f"/mailings/{mailing_id}/recipients/customers",
        data={"csrf_token": token, "created_from": "12-05-2026"},
    )
    assert bad_date.status_code == 422 and "Enter a date as YYYY-MM-DD." in bad_date.text

    pasted = await admin.post(
        f"/mailings/{mailing_id}/recipients/paste",
        data={"csrf_token": token, "numbers": "0612340002; 0612340001\n0612340009"},
    )
    counts = {k: figure(pasted.text, k) for k in ("valid", "duplicate", "no_consent")}
    assert counts == {"valid": 1, "duplicate": 1, "no_consent": 1}
    text = html.unescape(pasted.text)
    assert "+31612340001 is already a recipient of this mailing." in text
    assert "+31612340009 is no customer's number, so no consent is recorded." in text
    preview = await admin.get(f"/mailings/{mailing_id}/preview", params={"number": "0612340002"})
    assert "Hallo Bram" in preview.text


async def test_the_summary_names_what_the_outbox_would_refuse_in_dutch(
    harness: Harness, dutch: httpx.AsyncClient
) -> None:
    """A number in a country the spend controls do not allow is counted apart before the
    start, with the reason in Dutch."""
    await harness.configure(default_country_code="+31", spend={"allowed_countries": ["NL"]})
    mailing_id = await make_draft(dutch, text="Wij openen om 9 uur.")
    await upload(dutch, mailing_id, "nummer\n+31612345601\n+32470123456\n")
    summary = await dutch.get(f"/mailings/{mailing_id}/summary")
    assert figure(summary.text, "messages", "data-figure") == 1
    refused = re.search(r'id="summary-refused">\s*<li>([^<]*)</li>', summary.text)
    assert refused is not None, summary.text
    assert html.unescape(refused.group(1)) == (
        "1 ontvanger: Berichten naar BE zijn niet toegestaan (regel country_not_allowed); "
        "voeg het land toe aan de toegestane landen in de uitgavenlimieten."
    )
