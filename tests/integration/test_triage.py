"""Triage of unrecognised SMS: the request picker, the conversation in time order with the
assigned SMS marked, agents' access by configuration, the menu's count, deleting one or all
matching, each in the audit trail with the user; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.store.audit import AuditFilter, list_entries
from smsdesk.store.hash_key import keyed_hash
from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in

CUSTOMER = "+31612345678"
STRANGER = "+31611112222"


async def open_desk(h: Harness) -> None:
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})


@asynccontextmanager
async def logged_in(h: Harness, name: str, role: str) -> AsyncIterator[httpx.AsyncClient]:
    create_user(h.service, name, role)
    async with h.browser() as client:
        assert (await log_in(client, name)).status_code == 303
        yield client


def entries(h: Harness, action: str) -> list[Any]:
    with h.service.engine.connect() as conn:
        return list(reversed(list_entries(conn, AuditFilter(action=action))))


def details(entry: Any) -> dict[str, Any]:
    value = entry.details
    return json.loads(value) if isinstance(value, str) else dict(value)


def bubbles(page: str) -> list[str]:
    """The texts of the conversation's bubbles, in the order shown."""
    found = re.findall(
        r'<div class="bubble (?:inbound|outbound)[^"]*">(?:<span[^>]*>[^<]*</span>)?([^<]*)', page
    )
    return [html.unescape(text).strip() for text in found]


async def test_the_picker_finds_requests_and_the_assigned_sms_keeps_time_order(
    any_db_harness: Harness,
) -> None:
    """An agent searches the picker by customer number, assigns an SMS that arrived before the
    request's messages; it shows first in the conversation, marked with the agent's name, and
    the audit trail names the agent."""
    h = any_db_harness
    await open_desk(h)
    stray = await h.receive(STRANGER, "my parcel never came")  # no code: unrecognised
    opened = await h.receive(CUSTOMER, "HELP where is my parcel")
    other = await h.receive("+31687654321", "HELP another question")
    request_id = opened["request_id"]
    async with logged_in(h, "ann", "agent") as ann:
        listed = (await ann.get("/inbox/unrecognised")).text
        assert f'href="/inbox/unrecognised/{stray["id"]}/assign"' in listed
        picker = (await ann.get(f"/inbox/unrecognised/{stray['id']}/assign")).text
        # Latest first: the other customer's request, then this one.
        assert picker.index(f'id="pick-{other["request_id"]}"') < picker.index(
            f'id="pick-{request_id}"'
        )
        found = (await ann.get(f"/inbox/unrecognised/{stray['id']}/assign?q=1234")).text
        assert f'id="pick-{request_id}"' in found
        assert f'id="pick-{other["request_id"]}"' not in found
        assert "my parcel never came" in found
        done = await ann.post(
            f"/inbox/unrecognised/{stray['id']}/assign",
            data={"csrf_token": csrf_of(found), "request_id": request_id},
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"/requests/{request_id}"
        page = (await ann.get(f"/requests/{request_id}")).text
    assert bubbles(page) == ["my parcel never came", "where is my parcel"]
    assert "assigned from the unrecognised list by ann" in page
    [entry] = entries(h, "inbound.assigned")
    assert (entry.actor_kind, entry.actor_name, entry.target_id) == ("user", "ann", stray["id"])
    assert details(entry)["request_id"] == request_id


async def test_the_picker_searches_by_customer_name_and_title(any_db_harness: Harness) -> None:
    h = any_db_harness
    await open_desk(h)
    stray = await h.receive(STRANGER, "forgot the code")
    opened = await h.receive(CUSTOMER, "HELP invoice question")
    customer_id = opened["customer_id"]
    assert (
        await h.client.patch(
            f"/api/v1/customers/{customer_id}", json={"name": "Fenna Visser"}, headers=h.headers
        )
    ).status_code == 200
    async with logged_in(h, "root", "admin") as root:
        base = f"/inbox/unrecognised/{stray['id']}/assign"
        assert f'id="pick-{opened["request_id"]}"' in (await root.get(base + "?q=fenna")).text
        by_title = (await root.get(base + "?q=invoice")).text
        assert f'id="pick-{opened["request_id"]}"' in by_title
        nothing = (await root.get(base + "?q=zzzz")).text
        assert 'id="picker-empty"' in nothing


async def test_an_sms_assigned_to_a_new_request_is_marked_too(any_db_harness: Harness) -> None:
    h = any_db_harness
    await open_desk(h)
    stray = await h.receive(STRANGER, "no code, new question")
    async with logged_in(h, "ann", "agent") as ann:
        picker = (await ann.get(f"/inbox/unrecognised/{stray['id']}/assign")).text
        done = await ann.post(
            f"/inbox/unrecognised/{stray['id']}/assign",
            data={"csrf_token": csrf_of(picker), "request_id": ""},
        )
        page = (await ann.get(done.headers["location"])).text
    assert "no code, new question" in page
    assert "assigned from the unrecognised list by ann" in page


async def test_agents_triage_unless_the_configuration_says_no(any_db_harness: Harness) -> None:
    """By default agents see the list (without delete) and its count in the menu; with
    inbound.agents_triage off they are refused and the menu leaves it out."""
    h = any_db_harness
    await open_desk(h)
    stray = await h.receive(STRANGER, "hello?")
    async with logged_in(h, "ann", "agent") as ann:
        listed = (await ann.get("/inbox/unrecognised")).text
        assert "hello?" in listed
        assert f"/inbox/unrecognised/{stray['id']}/delete" not in listed
        assert 'id="bulk-delete"' not in listed
        assert re.search(r'id="menu-unrecognised-count">1<', listed)
        token = csrf_of(listed)
        refused = await ann.post(
            f"/inbox/unrecognised/{stray['id']}/delete", data={"csrf_token": token}
        )
        assert refused.status_code == 403
        await h.configure(inbound={"sms_endpoint": "HELP", "agents_triage": False})
        assert (await ann.get("/inbox/unrecognised")).status_code == 403
        picker = await ann.get(f"/inbox/unrecognised/{stray['id']}/assign")
        assert picker.status_code == 403
        assigned = await ann.post(
            f"/inbox/unrecognised/{stray['id']}/assign",
            data={"csrf_token": token, "request_id": ""},
        )
        assert assigned.status_code == 403
    async with logged_in(h, "root", "admin") as root:
        assert (await root.get("/inbox/unrecognised")).status_code == 200


async def test_the_menu_count_follows_the_list(any_db_harness: Harness) -> None:
    """The count drops as soon as the user assigns or deletes one here."""
    h = any_db_harness
    await open_desk(h)
    first = await h.receive(STRANGER, "one")
    await h.receive(STRANGER, "two")
    async with logged_in(h, "root", "admin") as root:
        page = (await root.get("/dashboard")).text
        assert re.search(r'id="menu-unrecognised-count">2<', page)
        await root.post(
            f"/inbox/unrecognised/{first['id']}/delete", data={"csrf_token": csrf_of(page)}
        )
        page = (await root.get("/dashboard")).text
        assert re.search(r'id="menu-unrecognised-count">1<', page)
    [entry] = entries(h, "inbound.deleted")
    assert (entry.actor_kind, entry.actor_name, entry.target_id) == ("user", "root", first["id"])


async def test_delete_all_matching_asks_with_the_count(any_db_harness: Harness) -> None:
    """An administrator filters by text, sees 'Delete 2 unrecognised SMS?', and only those go;
    one audit entry holds the count and the filter as keyed hashes."""
    h = any_db_harness
    await open_desk(h)
    for text in ("WIN a prize", "win money now", "where is my order"):
        await h.receive(STRANGER, text)
    async with logged_in(h, "root", "admin") as root:
        listed = (await root.get("/inbox/unrecognised?text=win")).text
        assert "2 SMS match." in listed
        assert 'href="/inbox/unrecognised/bulk-delete?text=win"' in listed
        confirm = (await root.get("/inbox/unrecognised/bulk-delete?text=win")).text
        assert "Delete 2 unrecognised SMS?" in confirm
        done = await root.post(
            "/inbox/unrecognised/bulk-delete", data={"csrf_token": csrf_of(confirm), "text": "win"}
        )
        assert done.status_code == 303
        assert "2 unrecognised SMS deleted." in (await root.get(done.headers["location"])).text
        after = (await root.get("/inbox/unrecognised")).text
        assert "where is my order" in after
        assert "WIN a prize" not in after
    [entry] = entries(h, "inbound.bulk_deleted")
    assert details(entry) == {
        "filter": {"state": "unrecognised", "text_hash": keyed_hash(h.service.trail.key, "win")},
        "count": 2,
    }


async def test_agents_may_not_delete_all(any_db_harness: Harness) -> None:
    h = any_db_harness
    await open_desk(h)
    await h.receive(STRANGER, "spam")
    async with logged_in(h, "ann", "agent") as ann:
        assert (await ann.get("/inbox/unrecognised/bulk-delete")).status_code == 403


async def test_the_command_line_deletes_all_matching(any_db_harness: Harness) -> None:
    h = any_db_harness
    await open_desk(h)
    await h.receive(STRANGER, "spam one")
    await h.receive(CUSTOMER, "keep me")
    runner = CliRunner(
        env={
            "SMSDESK_DATA_DIR": str(h.service.config.data_dir),
            "SMSDESK_DATABASE_URL": h.service.config.effective_database_url,
        }
    )
    args = ["inbox", "bulk-delete", "--sender", "1111", "--yes"]
    done = await asyncio.to_thread(runner.invoke, app, args)
    assert done.exit_code == 0, done.output
    assert "1 deleted" in done.output
    remaining = (await h.get("/api/v1/inbound")).json()["inbound"]
    assert [row["text"] for row in remaining] == ["keep me"]
    [entry] = entries(h, "inbound.bulk_deleted")
    assert entry.actor_kind == "cli"


async def test_the_sms_configuration_screen_offers_the_setting(any_db_harness: Harness) -> None:
    h = any_db_harness
    async with logged_in(h, "root", "admin") as root:
        page = (await root.get("/preferences/general/sms")).text
    assert 'name="inbound.agents_triage"' in page
    assert "Agents handle unrecognised SMS" in page


async def test_the_api_counts_then_deletes_all_matching(any_db_harness: Harness) -> None:
    """POST /api/v1/inbound/bulk: dry_run counts, the call deletes, the key is the actor;
    a sender key is refused."""
    h = any_db_harness
    await open_desk(h)
    await h.receive(STRANGER, "spam one")
    await h.receive(STRANGER, "spam two")
    await h.receive(CUSTOMER, "keep me")
    body = {"action": "delete", "filter": {"from": "1111", "text": "SPAM"}, "dry_run": True}
    counted = await h.post("/api/v1/inbound/bulk", body)
    assert counted.json() == {"action": "delete", "dry_run": True, "count": 2}
    _, plain = h.service.keys.create("shop", "sender")
    refused = await h.client.post(
        "/api/v1/inbound/bulk", json=body, headers={"Authorization": f"Bearer {plain}"}
    )
    assert refused.status_code == 403
    done = await h.post("/api/v1/inbound/bulk", {**body, "dry_run": False})
    assert done.json() == {"action": "delete", "dry_run": False, "count": 2}
    remaining = (await h.get("/api/v1/inbound")).json()["inbound"]
    assert [row["text"] for row in remaining] == ["keep me"]
    [entry] = entries(h, "inbound.bulk_deleted")
    assert (entry.actor_kind, entry.actor_name) == ("api_key", "test admin")
