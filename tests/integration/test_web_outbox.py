"""The outbox screen: failed and waiting messages with their reason, filters, resend, cancel,
delete and the CSV export, as a logged-in person sees them."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support.harness import Harness
from tests.support.webui import create_user, log_in, page_csrf

TO = "+31612345678"


async def simulate(h: Harness, **faults: Any) -> None:
    """Set the simulator's faults and wait until the dispatcher works with them."""
    await h.configure(module_settings={"simulator": {"report_delay": 0.02, **faults}})
    await h.idle_scans(2)


async def send(h: Harness, text: str = "Hello", **fields: Any) -> str:
    response = await h.post("/api/v1/messages", {"to": TO, "text": text, **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def failed_message(h: Harness, text: str = "Hello", **fields: Any) -> str:
    """A message the provider refused for good."""
    await simulate(h, permanent_failure_rate=1.0)
    message_id = await send(h, text, **fields)
    await h.wait_for(message_id, "failed")
    await simulate(h, permanent_failure_rate=0.0)
    return message_id


async def queued_message(h: Harness, text: str = "Later", **fields: Any) -> str:
    """A message that stays queued: it is scheduled for tomorrow."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    return await send(h, text, scheduled_at=tomorrow, **fields)


def row_of(html: str, message_id: str) -> str:
    """The table row of one message on a page ('' if it is not listed)."""
    match = re.search(rf'<tr id="message-{message_id}">(.*?)</tr>', html, re.S)
    return match.group(1) if match else ""


async def test_a_failed_message_is_listed_with_its_reason(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """The outbox shows a refused message, the provider's code and text, and its attempts."""
    message_id = await failed_message(harness)
    page = await admin.get("/outbox")
    assert page.status_code == 200
    row = row_of(page.text, message_id)
    assert "SIM-400" in row and "number rejected" in row
    assert 'class="status status-failed"' in row
    assert f'action="/outbox/{message_id}/resend"' in row


async def test_resend_queues_the_message_again_and_it_is_delivered(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """Resend from the outbox puts a failed message back in the queue; it then arrives."""
    message_id = await failed_message(harness)
    answer = await admin.post(
        f"/outbox/{message_id}/resend",
        data={"csrf_token": await page_csrf(admin), "back": "/outbox?status=failed"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/outbox?status=failed&done=resent"
    assert "The message is queued again." in (await admin.get(answer.headers["location"])).text
    body = await harness.wait_for(message_id, "delivered")
    timeline = [(e["status"], e["source"]) for e in body["timeline"]]
    assert ("queued", "operator") in timeline


async def test_filters_narrow_the_list(harness: Harness, admin: httpx.AsyncClient) -> None:
    """Status, priority, module and dates each leave only the messages that match."""
    failed = await failed_message(harness, priority=3)
    waiting = await queued_message(harness, priority=1)
    everything = (await admin.get("/outbox")).text
    assert row_of(everything, failed) and row_of(everything, waiting)

    only_failed = (await admin.get("/outbox?status=failed")).text
    assert row_of(only_failed, failed) and not row_of(only_failed, waiting)
    fastest = (await admin.get("/outbox?priority=1")).text
    assert row_of(fastest, waiting) and not row_of(fastest, failed)
    other_module = (await admin.get("/outbox?module=twilio")).text
    assert not row_of(other_module, failed) and "No messages match these filters." in other_module

    today = datetime.now(UTC).date()
    in_range = (await admin.get(f"/outbox?from={today}&to={today}")).text
    assert row_of(in_range, failed) and row_of(in_range, waiting)
    later = (await admin.get(f"/outbox?from={today + timedelta(days=1)}")).text
    assert not row_of(later, failed) and not row_of(later, waiting)
    bad_date = await admin.get("/outbox?from=yesterday")
    assert bad_date.status_code == 200 and "Enter a date as YYYY-MM-DD." in bad_date.text


async def test_outbox_pages_with_a_cursor(harness: Harness, admin: httpx.AsyncClient) -> None:
    """Beyond one page an 'Older' link leads to the rest, and no message is shown twice."""
    ids = [await queued_message(harness, f"m{i}") for i in range(52)]
    first = (await admin.get("/outbox")).text
    link = re.search(r'href="(/outbox\?before=[^"]+)" rel="next"', first)
    assert link is not None
    second = (await admin.get(link.group(1).replace("&amp;", "&"))).text
    on_first = {i for i in ids if row_of(first, i)}
    on_second = {i for i in ids if row_of(second, i)}
    assert len(on_first) == 50 and on_second == set(ids) - on_first


async def test_cancel_asks_first_and_needs_the_csrf_token(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """Cancel is a confirmed form with the token; without the token nothing changes."""
    message_id = await queued_message(harness)
    row = row_of((await admin.get("/outbox")).text, message_id)
    form = re.search(rf'<form method="post" action="/outbox/{message_id}/cancel"([^>]*)>', row)
    assert form is not None and "data-confirm=" in form.group(1)
    assert 'name="csrf_token"' in row

    refused = await admin.post(f"/outbox/{message_id}/cancel", data={"back": "/outbox"})
    assert refused.status_code == 403
    forged = await admin.post(f"/outbox/{message_id}/cancel", data={"csrf_token": "guess"})
    assert forged.status_code == 403
    assert (await harness.get(f"/api/v1/messages/{message_id}")).json()["status"] == "queued"

    done = await admin.post(
        f"/outbox/{message_id}/cancel", data={"csrf_token": await page_csrf(admin)}
    )
    assert done.status_code == 303
    assert (await harness.get(f"/api/v1/messages/{message_id}")).json()["status"] == "cancelled"
    again = await admin.post(
        f"/outbox/{message_id}/cancel", data={"csrf_token": await page_csrf(admin)}
    )
    assert "does not allow that" in (await admin.get(again.headers["location"])).text


async def test_delete_cancels_a_queued_message_and_removes_a_finished_one(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """Delete keeps a queued message as cancelled; a failed one disappears with its timeline."""
    waiting = await queued_message(harness)
    failed = await failed_message(harness)
    page = (await admin.get("/outbox")).text
    assert "data-confirm=" in row_of(page, failed).split(f"/outbox/{failed}/delete")[1]
    token = await page_csrf(admin)
    for message_id in (waiting, failed):
        answer = await admin.post(f"/outbox/{message_id}/delete", data={"csrf_token": token})
        assert answer.status_code == 303
    assert (await harness.get(f"/api/v1/messages/{waiting}")).json()["status"] == "cancelled"
    assert (await harness.get(f"/api/v1/messages/{failed}")).status_code == 404
    assert (await admin.get(f"/messages/{failed}")).status_code == 404


def parse_csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


async def test_csv_export_has_the_filtered_rows_quoted_and_defused(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """The export follows the filters; formulas get a quote; commas, quotes and newlines survive."""
    formula = '=HYPERLINK("http://evil.example","click")'
    awkward = 'One, "two"\nthree'
    first = await failed_message(harness, formula)
    second = await failed_message(harness, awkward)
    waiting = await queued_message(harness, "@SUM(1)")

    answer = await admin.get("/outbox.csv?status=failed")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = parse_csv(answer.content)
    assert [r["id"] for r in rows] == [second, first]
    by_id = {r["id"]: r for r in rows}
    assert by_id[first]["text"] == "'" + formula
    assert by_id[second]["text"] == awkward
    assert by_id[first]["status"] == "failed" and by_id[first]["status_code"] == "SIM-400"
    assert by_id[first]["to"] == "'" + TO
    assert answer.text.count('"') > 2 * len(rows) * 10  # every cell is quoted

    everything = parse_csv((await admin.get("/outbox.csv")).content)
    assert {r["id"] for r in everything} == {first, second, waiting}
    assert next(r for r in everything if r["id"] == waiting)["text"] == "'@SUM(1)"
    assert "Export CSV" in (await admin.get("/outbox?status=failed")).text
    assert 'href="/outbox.csv?status=failed"' in (await admin.get("/outbox?status=failed")).text


async def test_an_agent_can_use_the_outbox_but_not_delete(harness: Harness) -> None:
    """Agents see the outbox and resend; deleting is for administrators."""
    message_id = await failed_message(harness)
    create_user(harness.service, "agent", "agent")
    async with harness.browser() as agent:
        await log_in(agent, "agent")
        page = await agent.get("/outbox")
        assert page.status_code == 200 and row_of(page.text, message_id)
        assert f"/outbox/{message_id}/delete" not in page.text
        token = await page_csrf(agent)
        refused = await agent.post(f"/outbox/{message_id}/delete", data={"csrf_token": token})
        assert refused.status_code == 403
        resent = await agent.post(f"/outbox/{message_id}/resend", data={"csrf_token": token})
        assert resent.status_code == 303
        assert (await agent.get("/outbox.csv")).status_code == 200
    await harness.wait_for(message_id, "delivered")


async def test_the_outbox_speaks_dutch(harness: Harness) -> None:
    """A Dutch user sees Dutch headings, actions and status names."""
    await failed_message(harness)
    create_user(harness.service, "anouk", "admin", "nl")
    async with harness.browser() as client:
        await log_in(client, "anouk")
        page = (await client.get("/outbox")).text
    assert "Postvak UIT" in page
    assert ">mislukt<" in page and "Opnieuw versturen" in page
    assert "Exporteren als CSV" in page
    assert ">failed<" not in page and "Resend" not in page


async def test_resend_from_the_outbox_on_each_database(any_db_harness: Harness) -> None:
    """On SQLite and PostgreSQL: a failed message is listed, resent, and delivered."""
    h = any_db_harness
    message_id = await failed_message(h)
    create_user(h.service, "admin", "admin")
    async with h.browser() as client:
        await log_in(client, "admin")
        assert "SIM-400" in row_of((await client.get("/outbox?status=failed")).text, message_id)
        rows = parse_csv((await client.get("/outbox.csv?status=failed")).content)
        assert [r["id"] for r in rows] == [message_id]
        token = await page_csrf(client)
        await client.post(f"/outbox/{message_id}/resend", data={"csrf_token": token})
    await h.wait_for(message_id, "delivered")
