"""Bulk actions on the outbox: everything matching a filter (not only the page shown) is
cancelled, resent or deleted after its count is shown, with one audit entry; on the screen,
the API and the command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.domain.audit import Actor
from smsdesk.store.audit import AuditFilter, list_entries
from smsdesk.store.hash_key import keyed_hash
from smsdesk.store.outbox_admin import Action, BulkAction, MessageSearch
from smsdesk.store.tables import audit_log, messages
from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in

ONE = "+31612345678"
MANY = 620  # more than one batch of 500


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


async def queue_later(h: Harness, numbers: list[str], text: str = "Later") -> list[str]:
    """Messages scheduled for tomorrow: they wait in the queue until someone acts."""
    ids: list[str] = []
    for start in range(0, len(numbers), 1000):
        answer = await h.post(
            "/api/v1/messages/batch",
            {"to": numbers[start : start + 1000], "text": text, "scheduled_at": tomorrow()},
        )
        assert answer.status_code == 200, answer.text
        ids += [r["message"]["id"] for r in answer.json()["results"]]
    return ids


def numbers(count: int) -> list[str]:
    return [f"+316200{n:05d}" for n in range(count)]


def statuses(h: Harness) -> dict[str, int]:
    with h.service.engine.connect() as conn:
        rows = conn.execute(
            sa.select(messages.c.status, sa.func.count()).group_by(messages.c.status)
        ).all()
    return {status: count for status, count in rows}


def entries(h: Harness, action: str) -> list[Any]:
    with h.service.engine.connect() as conn:
        return list(reversed(list_entries(conn, AuditFilter(action=action))))


def details(entry: Any) -> dict[str, Any]:
    value = entry.details
    return json.loads(value) if isinstance(value, str) else dict(value)


@asynccontextmanager
async def logged_in(h: Harness, name: str, role: str) -> AsyncIterator[httpx.AsyncClient]:
    create_user(h.service, name, role)
    async with h.browser() as client:
        assert (await log_in(client, name)).status_code == 303
        yield client


async def test_bulk_cancel_on_the_screen_shows_the_count_then_cancels_every_page(
    any_db_harness: Harness,
) -> None:
    """An agent asks to cancel all queued messages; the page asks 'Cancel 621 queued
    messages?', and confirming cancels all of them, not only the 50 shown, in one audit entry."""
    h = any_db_harness
    await queue_later(h, [*numbers(MANY), ONE])
    async with logged_in(h, "ann", "agent") as ann:
        outbox = (await ann.get("/outbox?status=queued")).text
        assert 'href="/outbox/bulk/cancel?status=queued"' in outbox
        assert 'id="bulk-delete"' not in outbox  # delete is for administrators
        confirm = await ann.get("/outbox/bulk/cancel?status=queued")
        assert confirm.status_code == 200
        assert "Cancel 621 queued messages?" in confirm.text
        assert statuses(h) == {"queued": MANY + 1}  # asking changes nothing
        done = await ann.post(
            "/outbox/bulk/cancel/run",
            data={"csrf_token": csrf_of(confirm.text), "status": "queued"},
        )
        assert done.status_code == 303
        assert done.headers["location"].startswith("/outbox?status=queued&bulk=cancel&count=621")
        after = (await ann.get(done.headers["location"])).text
        assert "621 messages cancelled." in after
    assert statuses(h) == {"cancelled": MANY + 1}
    [entry] = entries(h, "message.bulk_cancelled")
    assert (entry.actor_kind, entry.actor_name) == ("user", "ann")
    assert details(entry) == {"filter": {"statuses": ["queued"]}, "count": 621, "skipped": 0}


async def test_the_number_filter_narrows_a_bulk_action_and_is_audited_hashed(
    any_db_harness: Harness,
) -> None:
    """With a number typed as an agent would, only that number's messages are counted and
    cancelled; the audit entry holds a keyed hash of the number, never the number."""
    h = any_db_harness
    await queue_later(h, [*numbers(3), ONE, ONE])
    async with logged_in(h, "ann", "admin") as ann:
        await h.configure(default_country_code="+31")
        confirm = await ann.get("/outbox/bulk/cancel?number=06+1234+5678")
        assert "Cancel 2 queued messages?" in confirm.text
        await ann.post(
            "/outbox/bulk/cancel/run",
            data={"csrf_token": csrf_of(confirm.text), "number": "06 1234 5678"},
        )
    assert statuses(h) == {"queued": 3, "cancelled": 2}
    [entry] = entries(h, "message.bulk_cancelled")
    assert details(entry)["filter"]["recipient_hash"] == keyed_hash(h.service.trail.key, ONE)
    with h.service.engine.connect() as conn:
        stored = "\n".join(str(v) for row in conn.execute(sa.select(audit_log)) for v in row)
    assert "12345678" not in stored


async def test_nothing_matching_says_so_and_offers_no_button(any_db_harness: Harness) -> None:
    h = any_db_harness
    async with logged_in(h, "ann", "admin") as ann:
        page = (await ann.get("/outbox/bulk/resend")).text
    assert "Resend 0 messages?" in page
    assert "Nothing matches these filters" in page
    assert 'id="bulk-confirm"' not in page


async def test_agents_may_not_delete_in_bulk(any_db_harness: Harness) -> None:
    """Deleting is for administrators: an agent's confirmation page and post are refused."""
    h = any_db_harness
    await queue_later(h, [ONE])
    async with logged_in(h, "ann", "agent") as ann:
        assert (await ann.get("/outbox/bulk/delete")).status_code == 403
        token = csrf_of((await ann.get("/outbox")).text)
        assert (
            await ann.post("/outbox/bulk/delete/run", data={"csrf_token": token})
        ).status_code == 403
    assert statuses(h) == {"queued": 1}


async def test_bulk_delete_cancels_queued_and_removes_finished_messages(
    any_db_harness: Harness,
) -> None:
    """An administrator's delete: a queued message is cancelled, a cancelled one removed."""
    h = any_db_harness
    [first] = await queue_later(h, [ONE])
    assert (await h.post(f"/api/v1/messages/{first}/cancel")).status_code == 200
    await queue_later(h, [ONE])
    async with logged_in(h, "root", "admin") as root:
        # The outbox shows waiting and failed messages unless asked for a status.
        confirm = await root.get("/outbox/bulk/delete")
        assert "Delete 1 message?" in confirm.text
        await root.post("/outbox/bulk/delete/run", data={"csrf_token": csrf_of(confirm.text)})
        assert statuses(h) == {"cancelled": 2}
        confirm = await root.get("/outbox/bulk/delete?status=cancelled")
        assert "Delete 2 messages?" in confirm.text
        token = csrf_of(confirm.text)
        await root.post(
            "/outbox/bulk/delete/run", data={"csrf_token": token, "status": "cancelled"}
        )
    assert statuses(h) == {}
    assert (await h.get(f"/api/v1/messages/{first}")).status_code == 404
    counts = [
        (details(e)["count"], details(e)["cancelled"]) for e in entries(h, "message.bulk_deleted")
    ]
    assert counts == [(1, 1), (2, 0)]


async def test_the_api_counts_with_dry_run_then_acts(any_db_harness: Harness) -> None:
    """dry_run answers the count and changes nothing; the real call cancels, resend queues the
    cancelled ones again; a sender key may cancel but not delete."""
    h = any_db_harness
    await queue_later(h, [*numbers(4), ONE])
    _, plain = h.service.keys.create("shop", "sender")
    shop = {"Authorization": f"Bearer {plain}"}
    body = {"action": "cancel", "filter": {"status": ["queued"], "to": ONE}, "dry_run": True}
    counted = await h.client.post("/api/v1/messages/bulk", json=body, headers=shop)
    assert counted.json() == {"action": "cancel", "dry_run": True, "count": 1}
    assert statuses(h) == {"queued": 5}
    done = await h.client.post(
        "/api/v1/messages/bulk", json={**body, "dry_run": False}, headers=shop
    )
    assert done.json() == {"action": "cancel", "dry_run": False, "count": 1, "skipped": 0}
    resent = await h.post("/api/v1/messages/bulk", {"action": "resend"})
    assert resent.json()["count"] == 1
    assert "cancelled" not in statuses(h)  # queued again now: the dispatcher may send it
    refused = await h.client.post("/api/v1/messages/bulk", json={"action": "delete"}, headers=shop)
    assert refused.status_code == 403
    [entry] = entries(h, "message.bulk_cancelled")
    assert (entry.actor_kind, entry.actor_name) == ("api_key", "shop")
    assert len(entries(h, "message.bulk_resent")) == 1


async def test_the_api_refuses_a_number_that_is_not_one(any_db_harness: Harness) -> None:
    answer = await any_db_harness.post(
        "/api/v1/messages/bulk", {"action": "cancel", "filter": {"to": "call me"}}
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["fields"][0]["field"] == "filter.to"


def cli(h: Harness) -> CliRunner:
    return CliRunner(
        env={
            "SMSDESK_DATA_DIR": str(h.service.config.data_dir),
            "SMSDESK_DATABASE_URL": h.service.config.effective_database_url,
            "COLUMNS": "200",
        }
    )


@pytest.mark.parametrize("confirm", ["--yes", "input"])
async def test_the_command_line_counts_asks_and_cancels(
    any_db_harness: Harness, confirm: str
) -> None:
    """`smsdesk messages bulk cancel --status queued --to ...` says how many, asks, and acts."""
    h = any_db_harness
    await queue_later(h, [*numbers(2), ONE])
    args = ["messages", "bulk", "cancel", "--status", "queued", "--to", ONE]
    text = "y\n" if confirm == "input" else None
    flags = ["--yes"] if confirm == "--yes" else []
    done = await asyncio.to_thread(cli(h).invoke, app, [*args, *flags], input=text)
    assert done.exit_code == 0, done.output
    assert "1 messages to cancel" in done.output
    assert "1 done" in done.output
    assert statuses(h) == {"queued": 2, "cancelled": 1}
    [entry] = entries(h, "message.bulk_cancelled")
    assert entry.actor_kind == "cli"


async def test_the_command_line_dry_run_changes_nothing(any_db_harness: Harness) -> None:
    h = any_db_harness
    await queue_later(h, numbers(3))
    args = ["messages", "bulk", "cancel", "--dry-run"]
    done = await asyncio.to_thread(cli(h).invoke, app, args)
    assert done.exit_code == 0, done.output
    assert "3 messages to cancel" in done.output
    assert statuses(h) == {"queued": 3}


async def test_a_bulk_action_works_in_batches_with_one_audit_entry(
    any_db_harness: Harness,
) -> None:
    """Five messages in batches of two: three transactions, progress after each, and still
    one audit entry for the whole action."""
    h = any_db_harness
    await queue_later(h, numbers(5))
    seen: list[int] = []
    job = BulkAction(
        MessageSearch(),
        Action.CANCEL,
        h.service.clock(),
        "test",
        h.service.trail,
        Actor.system("test"),
        batch=2,
    )
    result = await job.run(h.service.writer, seen.append)
    assert (result.done, result.skipped, seen) == (5, 0, [2, 4, 5])
    assert statuses(h) == {"cancelled": 5}
    assert [details(e)["count"] for e in entries(h, "message.bulk_cancelled")] == [5]
