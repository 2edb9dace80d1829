"""A mailing's summary adds up estimates made once per recipient, yet always says what sending
would give now: after its text, the allowed countries or the routes change, and compared with
the messages the sender then queues, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from smsdesk.mailings.sender import MailingSender
from smsdesk.store.mailing_tables import mailing_recipients
from smsdesk.store.tables import messages
from tests.support.harness import Harness

NL = [f"+3162000000{i}" for i in range(1, 4)]
BELGIUM = "+32470123456"
LONG = "x" * 170  # two GSM-7 segments


async def summary(h: Harness, mailing_id: str) -> dict[str, Any]:
    response = await h.get(f"/api/v1/mailings/{mailing_id}/summary")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def draft(h: Harness, text: str, numbers: list[str]) -> str:
    created = await h.post(
        "/api/v1/mailings", {"name": "Notice", "text": text, "override_consent": True}
    )
    assert created.status_code == 201, created.text
    mailing_id: str = created.json()["id"]
    added = await h.post(f"/api/v1/mailings/{mailing_id}/recipients", {"numbers": numbers})
    assert added.status_code == 200, added.text
    return mailing_id


def stored_estimates(h: Harness, mailing_id: str) -> list[tuple[Any, ...]]:
    r = mailing_recipients.c
    with h.service.engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(r.segments, r.cost, r.currency, r.refusal)
                .where(r.mailing_id == mailing_id)
                .order_by(r.id)
            )
        ]


async def test_each_recipient_is_estimated_when_it_is_added(any_db_harness: Harness) -> None:
    """Adding recipients stores each one's segments, or the outbox's refusal, at once."""
    h = any_db_harness
    await h.configure(spend={"allowed_countries": ["NL"]})
    mailing_id = await draft(h, "Hello", [NL[0], BELGIUM])
    (nl, be) = stored_estimates(h, mailing_id)
    assert nl == (1, None, None, None)
    assert be[0] is None and "BE" in be[3]


async def test_the_summary_follows_the_text_countries_and_routes(any_db_harness: Harness) -> None:
    """A country not allowed is refused with the reason; allowing it, pricing a route and
    lengthening the text each change the next summary as sending would."""
    h = any_db_harness
    await h.configure(spend={"allowed_countries": ["NL"]})
    mailing_id = await draft(h, "Hello {customer.number}", [*NL, BELGIUM])

    first = await summary(h, mailing_id)
    assert (first["messages"], first["segments"], first["unpriced_messages"]) == (3, 3, 3)
    assert [r["recipients"] for r in first["refused"]] == [1]
    assert "BE" in first["refused"][0]["reason"]

    await h.configure(spend={"allowed_countries": ["NL", "BE"]})
    route = {"name": "NL", "countries": ["NL"], "connections": ["default"], "currency": "EUR"}
    added = await h.post("/api/v1/routes", {**route, "price_per_segment": "0.075"})
    assert added.status_code == 201, added.text
    allowed = await summary(h, mailing_id)
    assert (allowed["messages"], allowed["refused"], allowed["unpriced_messages"]) == (4, [], 1)
    assert allowed["estimated_cost"] == {"EUR": "0.22500"}

    body = {"name": "Notice", "text": LONG, "override_consent": True}
    assert (await h.put(f"/api/v1/mailings/{mailing_id}", body)).status_code == 200
    assert {row[0] for row in stored_estimates(h, mailing_id)} == {None}  # cleared at once
    longer = await summary(h, mailing_id)
    assert (longer["messages"], longer["segments"]) == (4, 8)
    assert longer["estimated_cost"] == {"EUR": "0.45000"}


async def test_the_summary_is_what_the_sender_then_queues(any_db_harness: Harness) -> None:
    """The messages queued for the mailing have exactly the summary's segments and cost, and
    the recipient the summary refused is refused by the sender with the same reason."""
    h = any_db_harness
    await h.configure(spend={"allowed_countries": ["NL"]})
    route = {"name": "NL", "countries": ["NL"], "connections": ["default"]}
    await h.post("/api/v1/routes", {**route, "price_per_segment": "0.05", "currency": "EUR"})
    mailing_id = await draft(h, LONG, [*NL, BELGIUM])
    expected = await summary(h, mailing_id)
    assert (await h.post(f"/api/v1/mailings/{mailing_id}/start")).status_code == 200
    sender = MailingSender(h.service)

    def queued() -> list[sa.Row[Any]]:
        r = mailing_recipients.c
        joined = mailing_recipients.outerjoin(messages, messages.c.id == r.message_id)
        with h.service.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(messages.c.segments, messages.c.estimated_cost, r.status, r.reason)
                    .select_from(joined)
                    .where(r.mailing_id == mailing_id, r.status.is_not(None))
                )
            )

    def all_handled() -> bool:
        sender.step()
        return len(queued()) == 4

    await h.wait_until(all_handled, "every recipient queued or refused")
    rows = queued()
    sent = [row for row in rows if row.segments is not None]
    assert sum(row.segments for row in sent) == expected["segments"] == 6
    cost = sum((Decimal(str(row.estimated_cost)) for row in sent), Decimal(0))
    assert {"EUR": f"{cost:.5f}"} == expected["estimated_cost"]
    refused = [row.reason for row in rows if row.segments is None]
    assert refused == [expected["refused"][0]["reason"]]
