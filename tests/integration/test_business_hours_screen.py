"""Opening hours on the Groups screen, and what agents see of an out-of-hours SMS: the badge
on the requests list and the request, and the automatic answer in the conversation."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx

from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in

WEEK = {day: "" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


async def save_hours(client: httpx.AsyncClient, group: str, **fields: str) -> httpx.Response:
    page = await client.get("/groups")
    form = {"time_zone": "UTC", "holidays": "", "out_of_hours_reply": "", **WEEK, **fields}
    return await client.post(
        f"/groups/{group}/hours", data={"csrf_token": csrf_of(page.text), **form}
    )


async def make_group(h: Harness) -> str:
    created = await h.post("/api/v1/groups", {"name": "Service"})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_an_administrator_sets_hours_and_a_refusal_keeps_what_was_typed(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """Saved hours show per weekday; an interval across midnight is refused beside the form
    with the typed values kept."""
    group = await make_group(harness)
    page = (await admin.get("/groups")).text
    assert "Open around the clock." in page

    saved = await save_hours(
        admin,
        group,
        mon="9:00-12:00, 13:00-17:30",
        time_zone="Europe/Amsterdam",
        holidays="2026-12-25, 2026-12-26",
        out_of_hours_reply="Closed now; we answer from 09:00.",
    )
    assert saved.status_code == 303, saved.text
    page = (await admin.get("/groups")).text
    assert "<dt>Monday</dt><dd>09:00-12:00, 13:00-17:30</dd>" in page
    assert "<dt>Tuesday</dt><dd>closed</dd>" in page
    assert "Time zone: Europe/Amsterdam. Closed on: 2026-12-25 2026-12-26." in page
    assert "Closed now; we answer from 09:00." in page

    refused = await save_hours(admin, group, sun="22:00-06:00", time_zone="Europe/Amsterdam")
    assert refused.status_code == 422
    assert "&#39;22:00-06:00&#39; ends before it starts or crosses midnight" in refused.text
    assert 'value="22:00-06:00"' in refused.text
    page = (await admin.get("/groups")).text
    assert "<dt>Monday</dt><dd>09:00-12:00, 13:00-17:30</dd>" in page


async def test_refusals_are_in_dutch_on_a_dutch_page(harness: Harness) -> None:
    """A Dutch administrator reads the refusal and the weekdays in Dutch."""
    create_user(harness.service, "beheer", "admin", "nl")
    group = await make_group(harness)
    async with harness.browser() as client:
        await log_in(client, "beheer")
        refused = await save_hours(client, group, time_zone="Europe/Atlantis")
        assert refused.status_code == 422
        assert "&#39;Europe/Atlantis&#39; is geen tijdzone" in refused.text
        page = (await client.get("/groups")).text
        assert "Dag en nacht open." in page and "Openingstijden wijzigen" in page


async def test_agents_see_the_badge_and_the_automatic_answer(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """A group closed all week answers an SMS; the list and the request say Out of hours and
    the answer shows in the conversation as automatic."""
    h = harness
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    group = await make_group(h)
    rule = {"kind": "endpoint_code", "value": "HELP", "group": "Service"}
    assert (await h.post("/api/v1/routing-rules", rule)).status_code == 201
    # Open only three days from now (UTC): closed while the test runs.
    day = list(WEEK)[(datetime.now(UTC).weekday() + 3) % 7]
    saved = await save_hours(
        admin, group, out_of_hours_reply="We are closed.", **{day: "09:00-10:00"}
    )
    assert saved.status_code == 303
    received = await h.receive("0612345678", "HELP where is my parcel")
    request_id = received["request_id"]

    listing = (await admin.get("/requests")).text
    row = re.search(rf'<tr id="request-{request_id}".*?</tr>', listing, re.S)
    assert row is not None and "Out of hours" in row.group(0)
    page = (await admin.get(f"/requests/{request_id}")).text
    assert 'id="request-out-of-hours"' in page
    assert re.search(
        r'class="bubble outbound automatic"><span class="automatic-mark">'
        r"Automatic answer outside opening hours</span>We are closed\.",
        page,
    )
