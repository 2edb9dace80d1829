"""Presence for round-robin: a page view marks the user active, at most once a minute."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store.tables import users
from smsdesk.store.users import UserStore

PASSWORD = "correct horse battery staple"


def active_at(engine: Engine, user_id: int) -> float | None:
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(users.c.last_active_at).where(users.c.id == user_id)
        ).scalar()
    return None if found is None else float(found)


def test_a_session_marks_its_user_present_once_a_minute(engine: Engine) -> None:
    """The first page view sets last_active_at; views within the minute leave it; a view more
    than a minute later moves it."""
    store = UserStore(engine)
    user = store.create("anna", PASSWORD, "agent", "en", 1000.0)
    token = store.start_session(user, 1000.0)
    assert active_at(engine, user.id) is None
    assert store.session(token, 1001.0) is not None
    assert active_at(engine, user.id) == 1001.0
    store.session(token, 1050.0)
    assert active_at(engine, user.id) == 1001.0
    store.session(token, 1062.0)
    assert active_at(engine, user.id) == 1062.0
