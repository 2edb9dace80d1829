"""The accept path asks the opt-out list in memory without leaving the event loop, and only
while memory is sure: never a stale answer, never a wait."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from smsdesk.outbox.optout_cache import OptOutCache
from smsdesk.store import optouts
from smsdesk.store.tables import opt_outs
from smsdesk.testing import FakeClock

A, B = "+31612345671", "+31612345672"


def test_memory_answers_only_while_the_list_is_fresh(engine: Engine) -> None:
    """Right after a look at the database memory answers; a second later it defers again."""
    clock = FakeClock(100.0)
    cache = OptOutCache(engine, ttl=1.0, clock=clock)
    assert cache.opted_out_in_memory({A}) is None  # never read yet
    with engine.begin() as conn:  # as another process would, unseen by this one's counter
        conn.execute(opt_outs.insert().values(number=A, source="api", created_at=5.0))
    assert cache.opted_out({A, B}) == {A}
    assert cache.opted_out_in_memory({A, B}) == {A}
    assert cache.opted_out_in_memory(set()) == set()
    clock.advance(1.01)
    assert cache.opted_out_in_memory({A, B}) is None  # stale: the caller asks from a thread


def test_a_change_by_this_process_sends_callers_to_the_database(engine: Engine) -> None:
    """An opt-out just made here is never missed by an answer from memory."""
    clock = FakeClock(100.0)
    cache = OptOutCache(engine, ttl=1.0, clock=clock)
    assert cache.opted_out({A}) == set()
    assert cache.opted_out_in_memory({A}) == set()
    with engine.begin() as conn:
        optouts.add_opt_out(conn, A, keyword="STOP", source="sms", inbound_id=None, now=6.0)
    assert cache.opted_out_in_memory({A}) is None
    assert cache.opted_out({A}) == {A}


def test_a_list_too_large_to_hold_is_never_answered_from_memory(engine: Engine) -> None:
    """Without the numbers in memory, every check goes to the database."""
    cache = OptOutCache(engine, ttl=1.0, max_cached=0, clock=FakeClock(100.0))
    with engine.begin() as conn:
        conn.execute(opt_outs.insert().values(number=A, source="api", created_at=5.0))
    assert cache.opted_out({A}) == {A}
    assert cache.opted_out_in_memory({A}) is None
