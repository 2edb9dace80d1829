"""Routes in the database, on SQLite and PostgreSQL: created, changed, reordered and deleted
with audit entries of field names, and the loaded table routes accepted messages."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.domain.audit import Actor
from smsdesk.domain.connections import Connection
from smsdesk.domain.errors import DomainError
from smsdesk.domain.routing import MessageFacts, Route
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.outbox.accept import NewMessage, prepare_message
from smsdesk.outbox.routing import explain
from smsdesk.store import routes as store
from smsdesk.store.audit import AuditTrail
from smsdesk.store.messages import get_message, insert_messages
from smsdesk.store.tables import audit_log, connections
from smsdesk.web.api.schemas import message_out

NOW = 1_800_000_000.0
ACTOR = Actor.system("test")


@pytest.fixture
def trail() -> AuditTrail:
    return AuditTrail(lambda: b"k" * 32, lambda: NOW)


def _add_connection(engine: Engine, cid: str, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            connections.insert().values(
                id=cid, name=name, module="simulator", created_at=NOW, updated_at=NOW
            )
        )


def _audit(engine: Engine) -> list[tuple[str, list[str] | None]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.id)).all()
    return [(row.action, json.loads(row.details).get("fields")) for row in rows]


def _stored() -> tuple[Connection, ...]:
    return (
        Connection("default", "default", "simulator", is_default=True),
        Connection("c-cheap", "Cheap", "simulator"),
    )


def test_routes_are_stored_audited_and_route_messages(engine: Engine, trail: AuditTrail) -> None:
    """A route names connections by name or id; changes are audited by field name; the
    loaded table routes an accepted message as `explain` says."""
    _add_connection(engine, "c-cheap", "Cheap")
    with engine.begin() as conn:
        nl = store.create_route(
            conn,
            Route(
                id="",
                name="NL",
                position=0,
                countries=("nl",),
                connection_ids=("Cheap", "default"),
                price_per_segment=Decimal("0.05"),
                currency="eur",
            ),
            NOW,
            trail=trail,
            actor=ACTOR,
        )
        otp = store.create_route(
            conn,
            Route(id="", name="OTP", position=0, tags=("otp",), connection_ids=("default",)),
            NOW,
            trail=trail,
            actor=ACTOR,
        )
    assert (nl.position, otp.position) == (1, 2)
    assert nl.connection_ids == ("c-cheap", "default")
    with engine.begin() as conn:
        store.update_route(
            conn, nl.id, {"sender_override": "Shop", "enabled": True}, NOW, trail=trail, actor=ACTOR
        )
        store.reorder_routes(conn, [otp.id, nl.id], NOW, trail=trail, actor=ACTOR)
        table = store.routing_table(conn, _stored())
    assert [r.name for r in table.routes] == ["OTP", "NL"]
    assert table.routes[1].sender_override == "Shop"
    assert table.routes[1].price_per_segment == Decimal("0.05000")
    actions = _audit(engine)
    assert actions[0] == (
        "route.created",
        ["connection_ids", "countries", "currency", "name", "price_per_segment"],
    )
    assert actions[2] == ("route.changed", ["sender_override"])
    assert actions[3][0] == "routes.reordered"

    config = SmsConfiguration()
    with engine.connect() as conn:
        store.attach_routing(conn, config, _stored())
    row = prepare_message(NewMessage(to="+31612345678", text="hi"), config, NOW)
    assert (row["route_name"], row["connection_id"], row["sender"]) == ("NL", "c-cheap", "Shop")
    assert row["estimated_cost"] == "0.05000"
    with engine.begin() as conn:
        insert_messages(conn, [row], "api")
    with engine.connect() as conn:
        shown = message_out(get_message(conn, row["id"]))
    assert (shown["route"], shown["estimated_cost"], shown["cost_currency"]) == (
        "NL",
        "0.05000",
        "EUR",
    )
    assert config.routing is not None
    said = explain(config.routing, MessageFacts("+31612345678", "NL", "smsdesk", 2), {})
    assert said.choice.route_id == row["route_id"] and said.first is not None
    assert said.first.id == row["connection_id"]

    with engine.begin() as conn:
        assert store.delete_route(conn, nl.id, trail=trail, actor=ACTOR)
        assert not store.delete_route(conn, nl.id, trail=trail, actor=ACTOR)
        assert [r.name for r in store.load_routes(conn)] == ["OTP"]


def test_a_route_naming_an_unknown_connection_is_refused(engine: Engine, trail: AuditTrail) -> None:
    """An unknown connection is refused by field; nothing is stored or audited."""
    with pytest.raises(DomainError) as refused, engine.begin() as conn:
        store.create_route(
            conn,
            Route(id="", name="X", position=0, connection_ids=("nope",)),
            NOW,
            trail=trail,
            actor=ACTOR,
        )
    assert refused.value.field == "connection_ids"
    with engine.connect() as conn:
        assert store.load_routes(conn) == ()
    assert _audit(engine) == []
