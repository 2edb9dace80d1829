"""The requests overviews with counts and unread marks, and assigning from a request's page,
on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in


def counts(page: str) -> dict[str, int]:
    found = re.findall(r'<span class="count" id="count-(\w+)">([\d.,]+)</span>', page)
    return {name: int(value.replace(",", "").replace(".", "")) for name, value in found}


@asynccontextmanager
async def browser(h: Harness, name: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own, logged in as `name`."""
    async with h.browser() as client:
        assert (await log_in(client, name)).status_code == 303
        yield client


async def patch(h: Harness, request_id: str, **changes: Any) -> None:
    answer = await h.client.patch(f"/api/v1/requests/{request_id}", json=changes, headers=h.headers)
    assert answer.status_code == 200, answer.text


def unread_ids(page: str) -> set[str]:
    return set(re.findall(r'<tr id="request-(\w+)" class="unread">', page))


async def test_overviews_count_and_list_each_users_requests(any_db_harness: Harness) -> None:
    """Mine, Unassigned, My groups, Waiting for the customer and All count open and pending
    requests as the viewing agent sees them; the list shows the chosen view, in the API too."""
    h = any_db_harness
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    create_user(h.service, "anna", "agent")
    create_user(h.service, "bram", "agent")
    await h.post("/api/v1/groups", {"name": "Desk"})
    await h.post("/api/v1/groups/Desk/members", {"user": "anna"})
    mine = (await h.receive("0611111111", "HELP mine"))["request_id"]
    grouped = (await h.receive("0622222222", "HELP grouped"))["request_id"]
    pending = (await h.receive("0633333333", "HELP pending"))["request_id"]
    answered = (await h.receive("0644444444", "HELP answered"))["request_id"]
    closed = (await h.receive("0655555555", "HELP closed"))["request_id"]
    await patch(h, mine, owner="anna")
    await patch(h, grouped, group="Desk")
    await patch(h, pending, status="pending", owner="bram")
    await patch(h, closed, status="closed")
    replied = await h.post(f"/api/v1/requests/{answered}/reply", {"text": "We are on it."})
    assert replied.status_code == 201

    async with browser(h, "anna") as anna:
        page = (await anna.get("/requests")).text
        assert counts(page) == {"mine": 1, "unassigned": 2, "my_groups": 1, "waiting": 2, "all": 4}
        listed = (await anna.get("/requests?view=mine")).text
        assert f'id="request-{mine}"' in listed and f'id="request-{grouped}"' not in listed
        waiting = (await anna.get("/requests?view=waiting")).text
        assert f'id="request-{pending}"' in waiting and f'id="request-{answered}"' in waiting
        assert f'id="request-{mine}"' not in waiting
        in_groups = (await anna.get("/requests?view=my_groups")).text
        assert f'id="request-{grouped}"' in in_groups and ">Desk<" in in_groups
        every = (await anna.get("/requests?view=all&status=all")).text
        assert f'id="request-{closed}"' in every

    api = await h.get("/api/v1/requests", params={"view": "mine", "user": "anna"})
    body = api.json()
    assert [r["id"] for r in body["requests"]] == [mine]
    assert body["requests"][0]["unread"] is True
    assert body["counts"]["waiting"] == 2
    needs_user = await h.get("/api/v1/requests", params={"view": "mine"})
    assert needs_user.status_code == 422


async def test_unread_marks_follow_what_the_user_has_seen(any_db_harness: Harness) -> None:
    """A customer's message marks the request unread for an agent until the agent opens it;
    a new message from the customer marks it again; our own reply does not."""
    h = any_db_harness
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    create_user(h.service, "anna", "agent")
    request_id = (await h.receive("0611111111", "HELP hello"))["request_id"]
    async with browser(h, "anna") as anna:
        assert request_id in unread_ids((await anna.get("/requests")).text)
        await anna.get(f"/requests/{request_id}")
        assert request_id not in unread_ids((await anna.get("/requests")).text)
        await h.post(f"/api/v1/requests/{request_id}/reply", {"text": "Hi!"})
        assert request_id not in unread_ids((await anna.get("/requests")).text)
        await h.receive("0611111111", "HELP thanks")
        page = (await anna.get("/requests")).text
        assert request_id in unread_ids(page)
        assert "New message from the customer" in page


async def assign_form(client: httpx.AsyncClient, request_id: str, **fields: str) -> httpx.Response:
    page = await client.get(f"/requests/{request_id}")
    data = {"csrf_token": csrf_of(page.text), **fields}
    return await client.post(f"/requests/{request_id}/assign", data=data)


async def test_agents_assign_within_their_groups(any_db_harness: Harness) -> None:
    """An agent takes a request, hands it to a member of their group and may not hand it to
    someone outside their groups (told why, in Dutch on a Dutch page); an admin may."""
    h = any_db_harness
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    anna = create_user(h.service, "anna", "agent")
    bram = create_user(h.service, "bram", "agent")
    carl = create_user(h.service, "carl", "agent", "nl")
    create_user(h.service, "root", "admin")
    await h.post("/api/v1/groups", {"name": "Desk"})
    for name in ("anna", "bram"):
        await h.post("/api/v1/groups/Desk/members", {"user": name})
    request_id = (await h.receive("0611111111", "HELP hello"))["request_id"]

    async with browser(h, "anna") as client:
        taken = await assign_form(client, request_id, take="1")
        assert taken.status_code == 303
        page = (await client.get(f"/requests/{request_id}")).text
        assert '<dd id="request-owner">anna</dd>' in page
        assert f'<option value="{bram.id}"' in page and f'value="{carl.id}"' not in page

        handed = await assign_form(client, request_id, owner=str(bram.id), group="")
        assert handed.status_code == 303
        refused = await assign_form(client, request_id, owner=str(carl.id))
        assert refused.status_code == 422
        assert "only to themselves or to someone in one of their groups" in refused.text

    async with browser(h, "carl") as client:
        desk = (await h.get("/api/v1/groups/Desk")).json()["id"]
        refused = await assign_form(client, request_id, group=desk)
        assert refused.status_code == 422
        assert "alleen in een van hun eigen groepen" in refused.text

    async with browser(h, "root") as client:
        done = await assign_form(client, request_id, owner=str(carl.id), group="")
        assert done.status_code == 303
        page = (await client.get(f"/requests/{request_id}")).text
        assert '<dd id="request-owner">carl</dd>' in page
        assert '<dd id="request-group">no group</dd>' in page
    assert anna.id != carl.id
