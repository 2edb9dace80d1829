"""The Groups screen (/groups): administrators manage groups, members and routing rules."""

from __future__ import annotations

import re

import httpx

from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in


async def post(client: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    page = await client.get("/groups")
    return await client.post(path, data={"csrf_token": csrf_of(page.text), **fields})


def group_id(page: str, name: str) -> str:
    match = re.search(r'<section class="card group-card" id="group-(\w+)">\s*<h2>' + name, page)
    assert match is not None, f"no group {name} on the page"
    return match.group(1)


async def test_an_administrator_manages_groups_members_and_rules(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """Add a group, a member and two rules, move a rule up, rename, and delete; a refusal is
    shown beside its form with what was typed."""
    create_user(harness.service, "anna", "agent")
    added = await post(admin, "/groups", name="Billing", description="Invoices", round_robin="on")
    assert added.status_code == 303 and added.headers["location"] == "/groups?notice=added"
    page = (await admin.get("/groups?notice=added")).text
    billing = group_id(page, "Billing")
    assert "Round-robin: new requests go to present members in turn." in page

    clash = await post(admin, "/groups", name="billing")
    assert clash.status_code == 422
    assert "There is already a group named &#39;Billing&#39;." in clash.text

    anna = re.search(r'<option value="(\d+)">anna</option>', page)
    assert anna is not None
    await post(admin, f"/groups/{billing}/members", user_id=anna.group(1))
    page = (await admin.get("/groups")).text
    assert "<span>anna</span>" in page

    await post(admin, "/groups/rules", kind="endpoint_code", value="help", group=billing)
    await post(admin, "/groups/rules", kind="keyword", value="invoice", group=billing)
    page = (await admin.get("/groups")).text
    assert page.index("<strong>HELP</strong>") < page.index("<strong>INVOICE</strong>")
    keyword_rule = re.findall(r'<li id="rule-(\w+)">', page)[1]
    await post(admin, f"/groups/rules/{keyword_rule}/move", step="up")
    page = (await admin.get("/groups")).text
    assert page.index("<strong>INVOICE</strong>") < page.index("<strong>HELP</strong>")
    bad = await post(admin, "/groups/rules", kind="receiving_number", value="abc", group=billing)
    assert bad.status_code == 422 and "is not a phone number or short code" in bad.text
    assert 'value="abc"' in bad.text

    await post(admin, f"/groups/{billing}", name="Invoices", description="", round_robin="")
    page = (await admin.get("/groups")).text
    assert group_id(page, "Invoices") == billing
    assert "New requests wait for someone to take them." in page
    await post(admin, f"/groups/{billing}/delete")
    page = (await admin.get("/groups")).text
    assert 'id="no-groups"' in page and 'id="no-rules"' in page


async def test_the_groups_screen_is_for_administrators_and_speaks_dutch(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """Agents are refused; on a Dutch page the screen and its refusals are Dutch."""
    create_user(harness.service, "anna", "agent")
    create_user(harness.service, "beheer", "admin", "nl")
    async with harness.browser() as agent:
        await log_in(agent, "anna")
        assert (await agent.get("/groups")).status_code == 403
        assert 'href="/groups"' not in (await agent.get("/requests")).text
    async with harness.browser() as dutch:
        await log_in(dutch, "beheer")
        page = (await dutch.get("/groups")).text
        assert "Routeringsregels" in page and "Nieuwe groep" in page and "Groepen" in page
        empty = await post(dutch, "/groups", name="  ")
        assert "De naam van de groep is leeg; vul een naam in." in empty.text
        requests = (await dutch.get("/requests")).text
        assert "Van mij" in requests and "Wacht op de klant" in requests
