"""Upgrading a database with requests to the team-work schema fills in when each customer last
wrote, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Engine

from smsdesk.store import db


def test_existing_requests_get_their_customers_last_message(engine: Engine) -> None:
    """A request's newest inbound entry becomes its last customer message; one with only our
    messages keeps none (so it counts as waiting for the customer)."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    with db.write_transaction(engine) as connection, connection.begin():
        config.attributes["connection"] = connection
        command.downgrade(config, "0006")
    with engine.begin() as conn:
        for request_id in ("R1", "R2"):
            conn.execute(
                sa.text(
                    "INSERT INTO requests (id, title, status, category, priority, language,"
                    " customer_id, session_key, created_at, updated_at, last_activity_at)"
                    " VALUES (:id, 't', 'open', 'SMS', 'normal', 'en', 'C', :id, 1, 1, 30)"
                ),
                {"id": request_id},
            )
        conn.execute(
            sa.text(
                "INSERT INTO request_messages (request_id, direction, body, at) VALUES"
                " ('R1', 'in', 'a', 10), ('R1', 'out', 'b', 20), ('R1', 'in', 'c', 25),"
                " ('R2', 'out', 'd', 30)"
            )
        )
    db.upgrade(engine)
    with engine.connect() as conn:
        found: dict[str, int | None] = dict(
            conn.execute(sa.text("SELECT id, last_customer_message_at FROM requests")).all()
        )
    assert found == {"R1": 25, "R2": None}
