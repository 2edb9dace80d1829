"""The accept path's opt-out list in memory: fresh after local changes, within a second else."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.outbox.optout_cache import OptOutCache
from smsdesk.store import optouts
from smsdesk.store.tables import opt_outs
from smsdesk.testing import FakeClock

A, B, C = "+31612345671", "+31612345672", "+31612345673"


def add_elsewhere(engine: Engine, number: str, at: float) -> None:
    """As another process would: straight into the table, unseen by this process's counter."""
    with engine.begin() as conn:
        conn.execute(opt_outs.insert().values(number=number, source="api", created_at=at))


def test_a_change_by_another_process_is_seen_within_the_ttl(engine: Engine) -> None:
    clock = FakeClock(100.0)
    cache = OptOutCache(engine, ttl=1.0, clock=clock)
    assert cache.opted_out({A, B}) == set()
    add_elsewhere(engine, A, at=5.0)
    assert cache.opted_out({A, B}) == set()  # within the second: not yet
    clock.advance(1.01)
    assert cache.opted_out({A, B}) == {A}
    with engine.begin() as conn:
        conn.execute(opt_outs.delete().where(opt_outs.c.number == A))
    clock.advance(1.01)
    assert cache.opted_out({A, B}) == set()


def test_a_change_by_this_process_is_seen_at_once(engine: Engine) -> None:
    clock = FakeClock(100.0)
    cache = OptOutCache(engine, ttl=1.0, clock=clock)
    assert cache.opted_out({A}) == set()
    with engine.begin() as conn:
        optouts.add_opt_out(conn, A, keyword="STOP", source="sms", inbound_id=None, now=6.0)
    assert cache.opted_out({A}) == {A}
    with engine.begin() as conn:
        optouts.remove_opt_out(conn, A)
    assert cache.opted_out({A}) == set()


def test_an_unchanged_list_is_not_read_again(engine: Engine) -> None:
    clock = FakeClock(100.0)
    add_elsewhere(engine, A, at=5.0)
    cache = OptOutCache(engine, ttl=1.0, clock=clock)
    for _ in range(5):
        assert cache.opted_out({A, B}) == {A}
        clock.advance(2.0)
    assert cache.reloads == 1


def test_a_list_too_large_to_hold_is_asked_each_time(engine: Engine) -> None:
    clock = FakeClock(100.0)
    for number, at in ((A, 1.0), (B, 2.0), (C, 3.0)):
        add_elsewhere(engine, number, at)
    cache = OptOutCache(engine, ttl=1.0, max_cached=2, clock=clock)
    assert cache.opted_out({A, C, "+31600000000"}) == {A, C}
    with engine.begin() as conn:
        conn.execute(opt_outs.delete().where(opt_outs.c.number == A))
    assert cache.opted_out({A, C}) == {C}  # straight from the database, no waiting
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(opt_outs)).scalar() == 2
