"""Times on pages are shown in the user's time zone, in the page language's date format."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
from babel.dates import format_date

from smsdesk.web.ui.render import format_moment
from tests.support.harness import Harness


def created_shown(page: str) -> str:
    """The text of the message page's Created line."""
    found = re.search(r"<dt>Created</dt><dd>([^<]*)</dd>", page)
    assert found, page
    return found.group(1)


def test_a_moment_reads_in_the_locale_and_zone() -> None:
    """15 Jan 2027 08:00 UTC is 09:00 in Amsterdam, written the Dutch way; 03:00 in New York."""
    at = 1_800_000_000.0
    assert format_moment(at, "nl", ZoneInfo("Europe/Amsterdam")) == "15 jan 2027 09:00:00 CET"
    assert format_moment(at, "en", ZoneInfo("America/New_York")) == "Jan 15, 2027 03:00:00 EST"


async def test_the_browsers_zone_is_used_until_the_user_chooses_one(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """The cookie the page script sets from the browser's zone applies while the user has none
    chosen; the zone saved in My settings wins over it; an unknown zone falls back to UTC."""
    response = await harness.post("/api/v1/messages", {"to": "+31612345678", "text": "Hello"})
    assert response.status_code == 201, response.text
    address = f"/messages/{response.json()['id']}"

    admin.cookies.set("smsdesk_tz", "America/New_York")
    assert re.fullmatch(
        r"\w{3} \d+, \d{4} \d\d:\d\d:\d\d E[SD]T", created_shown((await admin.get(address)).text)
    )
    harness.service.users.set_contact("admin", {"time_zone": "Asia/Tokyo"})
    assert created_shown((await admin.get(address)).text).endswith(" JST")
    harness.service.users.set_contact("admin", {"time_zone": None})
    admin.cookies.set("smsdesk_tz", "Not/AZone")
    assert created_shown((await admin.get(address)).text).endswith(" UTC")


async def test_the_dashboards_days_are_the_users_days(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """The per-day chart ends with today where the user is: Pacific/Kiritimati (UTC+14) and
    Pacific/Pago_Pago (UTC-11) are never on the same date."""
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        harness.service.users.set_contact("admin", {"time_zone": zone})
        page = (await admin.get("/dashboard?days=7")).text
        labels = re.findall(r'<text class="chart-label"[^>]*>([^<]*)</text>', page)
        today = datetime.now(ZoneInfo(zone)).date()
        assert labels[-1] == format_date(today, "d MMM", locale="en"), (zone, labels)
