"""Connection health and figures on SQLite and PostgreSQL: conditional changes, the probe lease,
moving queued messages between connections, per-minute statistics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from smsdesk.domain.connections import Health
from smsdesk.domain.message import Status
from smsdesk.events import CONNECTION_HEALTH, EVENT_TYPES
from smsdesk.store import connection_health as health
from smsdesk.store import messages as repo
from smsdesk.store.db import write_transaction
from smsdesk.store.stats import connection_figures
from smsdesk.store.tables import connections, message_events, messages
from tests.integration.test_store import NOW, make_row

OPEN = Health("open", 5, NOW, "connection refused")


class Recorder:
    """An event sink that keeps what was emitted (as the webhook hub would store it)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, conn: Connection, event_type: str, payloads: Sequence[dict[str, Any]]) -> None:
        self.events.extend((event_type, p) for p in payloads)


def write(engine: Engine, job: Any) -> Any:
    with write_transaction(engine) as conn, conn.begin():
        return job(conn)


def add_connection(engine: Engine, connection_id: str, module: str = "cm") -> None:
    write(
        engine,
        lambda c: c.execute(
            connections.insert().values(
                id=connection_id,
                name=connection_id,
                module=module,
                settings="{}",
                secrets="{}",
                rate_limit=0,
                concurrency=4,
                failure_threshold=3,
                cool_down_seconds=60,
                enabled=True,
                is_default=False,
                version=1,
                created_at=NOW,
                updated_at=NOW,
            )
        ),
    )


def test_a_change_is_made_once_and_published_once(engine: Engine) -> None:
    """Two processes seeing the same failure: one opens the circuit, one event fires."""
    add_connection(engine, "cm-a")
    sink = Recorder()
    closed = Health()
    opened = [
        write(engine, lambda c: health.transition(c, "cm-a", closed, OPEN, NOW, sink))
        for _ in range(2)
    ]
    assert opened == [True, False]
    assert [e for e, _ in sink.events] == [CONNECTION_HEALTH]
    payload = sink.events[0][1]
    assert (payload["connection_id"], payload["state"], payload["previous"]) == (
        "cm-a",
        "open",
        "closed",
    )
    assert payload["last_error"] == "connection refused"
    with engine.connect() as conn:
        assert health.states(conn)["cm-a"] == OPEN
    assert CONNECTION_HEALTH in EVENT_TYPES


def test_counting_failures_changes_no_state_and_publishes_nothing(engine: Engine) -> None:
    """A failure that does not open the circuit is stored without an event."""
    add_connection(engine, "cm-a")
    sink = Recorder()
    one = Health("closed", 1, None, "503")
    assert write(engine, lambda c: health.transition(c, "cm-a", Health(), one, NOW, sink))
    assert sink.events == []
    with engine.connect() as conn:
        assert health.health_of(conn, "cm-a") == one


def test_the_probe_is_leased_to_one_process_after_the_cool_down(engine: Engine) -> None:
    """Before the cool-down nobody probes; then one process does until its lease runs out."""
    add_connection(engine, "cm-a")
    sink = Recorder()
    write(engine, lambda c: health.transition(c, "cm-a", Health(), OPEN, NOW, sink))

    def probe(owner: str, now: float) -> bool:
        return bool(
            write(
                engine,
                lambda c: health.take_probe(
                    c, "cm-a", owner, now, now + 30, cool_down=60, events=sink
                ),
            )
        )

    assert not probe("p1", NOW + 59)
    assert probe("p1", NOW + 60)
    assert not probe("p2", NOW + 61)
    assert probe("p2", NOW + 91)  # p1's lease ran out
    states = [(p["previous"], p["state"]) for _, p in sink.events]
    assert states == [("closed", "open"), ("open", "half_open")]
    with engine.connect() as conn:
        assert health.health_of(conn, "cm-a").state == "half_open"
    back = Health("closed", 0, None, None)
    half = Health("half_open", 5, NOW, "connection refused")
    assert write(engine, lambda c: health.transition(c, "cm-a", half, back, NOW + 92, sink))
    assert sink.events[-1][1]["state"] == "closed"


def test_implicit_connections_have_no_circuit(engine: Engine) -> None:
    """A module stand-in is never stored: it reads closed and changes nothing."""
    with engine.connect() as conn:
        assert health.health_of(conn, "module:cm") == Health()
    assert not write(engine, lambda c: health.transition(c, "module:cm", Health(), OPEN, NOW))


def test_minute_figures_add_up(engine: Engine) -> None:
    """Batches in the same minute add to one row; the sum covers the minutes asked for."""
    tally = health.Tally(attempts=3, accepted=2, not_taken=1)
    for at in (NOW, NOW + 1, NOW + 120):
        write(engine, lambda c, at=at: health.add_stats(c, "cm-a", at, tally))
    write(engine, lambda c: health.add_stats(c, "cm-b", NOW, health.Tally(failovers=2)))
    with engine.connect() as conn:
        both = health.stats_between(conn, NOW - 60, NOW + 180)
        recent = health.stats_between(conn, NOW + 100, NOW + 180)
    assert both["cm-a"] == health.Tally(attempts=9, accepted=6, not_taken=3)
    assert both["cm-b"] == health.Tally(failovers=2)
    assert recent == {"cm-a": tally}


def test_claims_take_a_connections_messages_and_unassigned_ones_of_its_module(
    engine: Engine,
) -> None:
    """A connection claims its own messages, and those of its module written without one."""
    mine = {**make_row(), "module": "cm", "connection_id": "cm-a"}
    old = {**make_row(), "module": "cm", "connection_id": None}
    other = {**make_row(), "module": "cm", "connection_id": "cm-b"}
    write(engine, lambda c: repo.insert_messages(c, [mine, old, other], "test"))
    rows = write(
        engine,
        lambda c: repo.claim_due(
            c,
            connection_id="cm-a",
            module="cm",
            owner="w1",
            limit=10,
            now=NOW,
            lease_until=NOW + 60,
        ),
    )
    assert sorted(r.id for r in rows) == sorted([mine["id"], old["id"]])
    assert {(r.connection_id, r.connection_attempts) for r in rows} == {("cm-a", 1)}


def test_a_failover_outcome_moves_the_message_and_leaves_a_timeline_line(engine: Engine) -> None:
    """Recording a failover puts the message on its next connection, queued, counted, explained."""
    row = {
        **make_row(),
        "module": "cm",
        "connection_id": "cm-a",
        "route_plan": json.dumps(["cm-a", "link"]),
    }
    write(engine, lambda c: repo.insert_messages(c, [row], "test"))
    write(
        engine,
        lambda c: repo.claim_due(
            c, connection_id="cm-a", owner="w1", limit=1, now=NOW, lease_until=NOW + 60
        ),
    )
    outcome = repo.Outcome(
        row["id"],
        Status.QUEUED,
        "503",
        "service unavailable",
        next_attempt_at=NOW,
        tried="cm-a",
        connection_id="link",
        module="linkmobility",
        plan_index=1,
        failover_reason="not_taken",
    )
    write(engine, lambda c: repo.record_send_outcomes(c, "w1", [outcome], NOW))
    with engine.connect() as conn:
        stored = conn.execute(sa.select(messages).where(messages.c.id == row["id"])).one()
        lines = conn.execute(
            sa.select(message_events).where(message_events.c.message_id == row["id"])
        ).all()
    assert (stored.status, stored.connection_id, stored.module) == (
        "queued",
        "link",
        "linkmobility",
    )
    assert (stored.plan_index, stored.failovers, stored.connection_attempts) == (1, 1, 0)
    failover = [line for line in lines if line.source == "failover"]
    assert [(f.code, f.detail, f.connection_id) for f in failover] == [
        ("not_taken", "cm-a", "link")
    ]
    attempt = [line for line in lines if line.source == "provider"]
    assert [(a.code, a.connection_id) for a in attempt] == [("503", "cm-a")]


def test_queued_messages_move_off_a_connection_once(engine: Engine) -> None:
    """Moving queued messages is conditional on where they were read: a second move is a no-op."""
    row = {**make_row(), "module": "cm", "connection_id": "cm-a"}
    write(engine, lambda c: repo.insert_messages(c, [row], "test"))
    with engine.connect() as conn:
        waiting = repo.waiting_on(conn, "cm-a", NOW, 10)
    assert [w.id for w in waiting] == [row["id"]]
    move = repo.Move(row["id"], "cm-a", "cm-b", "cm", 1, "circuit_open")
    assert write(engine, lambda c: repo.move_connection(c, [move], NOW)) == 1
    assert write(engine, lambda c: repo.move_connection(c, [move], NOW)) == 0
    with engine.connect() as conn:
        assert repo.waiting_on(conn, "cm-a", NOW, 10) == []
        assert [w.id for w in repo.waiting_on(conn, "cm-b", NOW, 10)] == [row["id"]]


def test_dashboard_figures_per_connection(engine: Engine) -> None:
    """Each connection's circuit, accepted messages per minute, error rate and failovers over
    the period; a stand-in that sent is listed by its id; a connection that did nothing has
    no error rate."""
    add_connection(engine, "cm-a")
    add_connection(engine, "cm-b")
    write(engine, lambda c: health.transition(c, "cm-a", Health(), OPEN, NOW))
    a = health.Tally(attempts=10, accepted=6, not_taken=3, ambiguous=1, failovers=3)
    write(engine, lambda c: health.add_stats(c, "cm-a", NOW, a))
    write(engine, lambda c: health.add_stats(c, "module:twilio", NOW, health.Tally(2, 2)))
    write(engine, lambda c: health.add_stats(c, "cm-b", NOW - 7200, health.Tally(5, 5)))
    with engine.connect() as conn:
        figures = connection_figures(conn, NOW - 180, NOW + 60)
    assert [
        (f.id, f.state, f.attempts, f.sent_per_min, f.error_rate, f.failovers) for f in figures
    ] == [
        ("cm-a", "open", 10, 1.5, 0.4, 3),
        ("cm-b", "closed", 0, 0.0, None, 0),
        ("default", "closed", 0, 0.0, None, 0),
        ("module:twilio", "closed", 2, 0.5, 0.0, 0),
    ]
