"""The administrators' opt-out list (/opt-outs): search, add, remove after confirming."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa

from smsdesk.customers import erasure
from smsdesk.domain.audit import Actor
from smsdesk.store.tables import audit_log
from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in

ADA = "+31612345678"
BOB = "+31623456789"


@pytest.fixture
async def desk(any_db_harness: Harness) -> Harness:
    await any_db_harness.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    return any_db_harness


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


async def test_an_administrator_adds_searches_and_removes_numbers(desk: Harness) -> None:
    """A number typed nationally is added (and audited), found by part of it, and removed only
    after the confirmation page."""
    h = desk
    await h.receive(BOB, "STOP")
    create_user(h.service, "admin", "admin")
    async with h.browser() as client:
        assert (await log_in(client, "admin")).status_code == 303
        page = await client.get("/opt-outs")
        assert page.status_code == 200 and BOB in page.text
        assert "replied STOP" in text_of(page.text)
        added = await client.post(
            "/opt-outs", data={"csrf_token": csrf_of(page.text), "number": "06 1234 5678"}
        )
        assert added.status_code == 303
        listed = await client.get(added.headers["location"])
        assert "The number was added to the opt-out list." in listed.text
        assert ADA in listed.text and "added by an administrator" in listed.text
        found = await client.get("/opt-outs", params={"q": "612345"})
        assert ADA in found.text and BOB not in found.text

        bad = await client.post(
            "/opt-outs", data={"csrf_token": csrf_of(page.text), "number": "12"}
        )
        assert bad.status_code == 422 and 'id="optout-number-error"' in bad.text

        confirm = await client.get("/opt-outs/remove", params={"number": ADA})
        assert confirm.status_code == 200 and 'id="confirm-remove"' in confirm.text
        still = (await h.get("/api/v1/opt-outs")).json()["opt_outs"]
        assert ADA in [o["number"] for o in still]
        removed = await client.post(
            "/opt-outs/remove", data={"csrf_token": csrf_of(confirm.text), "number": ADA}
        )
        assert removed.status_code == 303
        after = (await h.get("/api/v1/opt-outs")).json()["opt_outs"]
        assert [o["number"] for o in after] == [BOB]
        gone = await client.get("/opt-outs/remove", params={"number": ADA})
        assert gone.status_code == 404
    with h.service.engine.connect() as conn:
        actions = conn.execute(
            sa.select(audit_log.c.action, audit_log.c.actor_name).where(
                audit_log.c.action.like("optout.%")
            )
        ).all()
    assert sorted(actions) == [("optout.added", "admin"), ("optout.removed", "admin")]


async def test_an_erased_customer_is_listed_without_the_number(desk: Harness) -> None:
    """The erased customer's opt-out stays, as 'erased customer', and the number is not shown."""
    h = desk
    answer = await h.receive(ADA, "HELP hello")
    await h.receive(ADA, "STOP")
    erasure.erase_customer(h.service, answer["customer_id"], Actor.system("test"))
    create_user(h.service, "admin", "admin", "nl")
    async with h.browser() as client:
        assert (await log_in(client, "admin")).status_code == 303
        page = await client.get("/opt-outs")
    assert ADA not in page.text and "612345678" not in page.text
    assert 'id="erased-optouts"' in page.text and "gewiste klant" in page.text
    assert "Afmeldingen" in page.text


async def test_agents_may_not_manage_the_list(desk: Harness) -> None:
    """The screen and its changes are for administrators."""
    h = desk
    create_user(h.service, "sam", "agent")
    async with h.browser() as client:
        assert (await log_in(client, "sam")).status_code == 303
        assert (await client.get("/opt-outs")).status_code == 403
        csrf = csrf_of((await client.get("/requests")).text)
        refused = await client.post("/opt-outs", data={"csrf_token": csrf, "number": ADA})
        assert refused.status_code == 403
    assert (await h.get("/api/v1/opt-outs")).json()["opt_outs"] == []
