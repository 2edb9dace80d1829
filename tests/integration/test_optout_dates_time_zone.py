"""Opt-out dates on the screens are days of the viewer's calendar: an opt-out at 23:30 UTC is
shown as the next day to a viewer in Amsterdam, and as that day to a viewer in UTC."""

from __future__ import annotations

import html
import re

import httpx

from smsdesk.store.optouts import add_opt_out
from tests.support.harness import Harness
from tests.support.webui import create_user, log_in

BOB = "+31623456789"
LATE_EVENING_UTC = 1741995000.0  # 2025-03-14 23:30 UTC, 00:30 on 15 March in Amsterdam


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def _shown_dates(client: httpx.AsyncClient, request_id: str) -> dict[str, list[str]]:
    """The dates each screen shows with the opt-out."""
    pattern = re.compile(r"\b(1[45] Mar 2025)\b")
    listed = _text((await client.get("/opt-outs")).text)
    conversation = (await client.get(f"/requests/{request_id}")).text
    badge = re.search(r'id="request-optout">([^<]*)<', conversation)
    assert badge is not None, "no opt-out badge on the request"
    requests = re.findall(r'class="optout-badge">([^<]*)<', (await client.get("/requests")).text)
    return {
        "list": pattern.findall(listed),
        "request": pattern.findall(html.unescape(badge.group(1))),
        "requests": [d for b in requests for d in pattern.findall(html.unescape(b))],
    }


async def test_opt_out_dates_follow_the_viewers_time_zone(any_db_harness: Harness) -> None:
    """The opt-out list, the request's badge and the requests list's badge."""
    h = any_db_harness
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    sms = await h.receive(BOB, "HELP my order")
    h.service.writer.run_sync(
        lambda conn: add_opt_out(
            conn, BOB, keyword="STOP", source="sms", inbound_id=None, now=LATE_EVENING_UTC
        )
    )
    create_user(h.service, "amsterdam", "admin")
    h.service.users.set_contact("amsterdam", {"time_zone": "Europe/Amsterdam"})
    create_user(h.service, "london", "admin")
    h.service.users.set_contact("london", {"time_zone": "UTC"})

    async with h.browser() as amsterdam, h.browser() as london:
        await log_in(amsterdam, "amsterdam")
        await log_in(london, "london")
        seen_in_amsterdam = await _shown_dates(amsterdam, sms["request_id"])
        seen_in_london = await _shown_dates(london, sms["request_id"])

    assert seen_in_amsterdam == {
        "list": ["15 Mar 2025"],
        "request": ["15 Mar 2025"],
        "requests": ["15 Mar 2025"],
    }
    assert seen_in_london == {
        "list": ["14 Mar 2025"],
        "request": ["14 Mar 2025"],
        "requests": ["14 Mar 2025"],
    }
