"""Routes at accept time, end to end: a stored route decides the connection plan, sender and
estimated cost of a message sent through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal

import sqlalchemy as sa

from smsdesk.domain.audit import Actor
from smsdesk.domain.connections import Connection
from smsdesk.domain.routing import Route
from smsdesk.store import routes
from smsdesk.store.tables import messages
from tests.support.harness import Harness

ACTOR = Actor.system("test")


async def test_a_stored_route_decides_plan_sender_and_cost(any_db_harness: Harness) -> None:
    """The accepted answer and the stored message carry the route and its estimated cost; a
    message the route does not match goes to the default connection."""
    h = any_db_harness
    await h.configure(default_country_code="+31", spend={"allowed_countries": ["NL", "BE"]})
    service = h.service
    backup = service.settings.connections.create(Connection("", "Backup", "simulator"), ACTOR)

    def add_route(conn: sa.Connection) -> Route:
        route = Route(
            id="",
            name="Belgium",
            position=0,
            countries=("BE",),
            connection_ids=("Backup", "default"),
            sender_override="Shop",
            price_per_segment=Decimal("0.08"),
            currency="EUR",
        )
        return routes.create_route(conn, route, service.clock(), trail=service.trail, actor=ACTOR)

    await service.writer.run(add_route)
    service.settings.forget()
    answer = await h.post("/api/v1/messages", {"to": "+32470123456", "text": "x" * 200})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["route"], body["estimated_cost"], body["cost_currency"]) == (
        "Belgium",
        "0.16000",
        "EUR",
    )
    assert body["sender"] == "Shop"
    with service.engine.connect() as conn:
        row = conn.execute(sa.select(messages).where(messages.c.id == body["id"])).one()
    assert json.loads(row.route_plan) == [backup.id, "default"]
    assert (row.connection_id, row.plan_index, row.country) == (backup.id, 0, "BE")
    assert row.estimated_cost == Decimal("0.16000")
    local = (await h.post("/api/v1/messages", {"to": "0612345678", "text": "hi"})).json()
    assert (local["route"], local["estimated_cost"]) == ("default", None)
