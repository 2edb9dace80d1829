"""The claim indexes hold only queued messages, the lease index only messages being sent and
the session-report index only the SMPP module's sent messages, and the statements that need
them use them, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from smsdesk.providers.base import Transport
from smsdesk.providers.registry import all_modules
from smsdesk.store import lease_expiry, reports
from smsdesk.store import messages as repo
from smsdesk.store.db import is_postgres
from smsdesk.store.tables import SESSION_REPORT_MODULES
from tests.integration.test_store import NOW, insert, make_row, write

PARTIAL = {
    "ix_messages_claim": "queued",
    "ix_messages_claim_conn": "queued",
    "ix_messages_lease": "sending",
    "ix_messages_session_reports": "sent",
}


def index_definitions(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        if is_postgres(engine):
            rows = conn.execute(
                sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'messages'")
            )
        else:
            rows = conn.execute(
                sa.text("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'messages'")
            )
        return {name: sql or "" for name, sql in rows}


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement sent to the database meanwhile, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_c: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        sent.append((sql, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def sql_literal(value: Any) -> str:
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def plan(engine: Engine, sql: str, params: Any) -> str:
    with engine.connect() as conn:
        if is_postgres(engine):
            # The plan the server keeps for a statement the driver prepared: generic, made
            # without the parameters' values.
            names: list[str] = []

            def numbered(match: re.Match[str]) -> str:
                names.append(match.group(1))
                return f"${len(names)}"

            prepared = re.sub(r"%\((\w+)\)s", numbered, sql)
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            conn.exec_driver_sql(f"PREPARE generic AS {prepared}")
            try:
                arguments = ", ".join(sql_literal(params[name]) for name in names)
                rows = conn.exec_driver_sql(f"EXPLAIN EXECUTE generic({arguments})").all()
            finally:
                conn.exec_driver_sql("DEALLOCATE generic")
            return "\n".join(row[0] for row in rows)
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
        return "\n".join(str(row[-1]) for row in rows)


def test_the_status_indexes_hold_only_their_status(engine: Engine) -> None:
    found = index_definitions(engine)
    for name, status in PARTIAL.items():
        assert f"'{status}'" in found[name].split("WHERE", 1)[1], found[name]
    assert "WHERE" not in found["ix_messages_status_id"]  # the listing by any status


def test_the_claim_and_lease_expiry_read_their_partial_indexes(engine: Engine) -> None:
    insert(engine, [make_row(priority) for priority in (1, 2, 3, 2, 1)])
    with statements(engine) as sent:
        claimed = write(
            engine,
            lambda c: repo.claim_due(
                c,
                connection_id="module:simulator",
                module="simulator",
                owner="w1",
                limit=3,
                now=NOW,
                lease_until=NOW + 60,
            ),
        )
        write(engine, lambda c: lease_expiry.release_expired_leases(c, NOW + 120))
    assert [row.priority for row in claimed] == [1, 1, 2]
    due = [(sql, p) for sql, p in sent if "next_attempt_at <=" in sql]
    leases = [(sql, p) for sql, p in sent if sql.startswith("SELECT") and "lease_until <" in sql]
    assert due and leases
    for sql, params in due:
        assert "ix_messages_claim" in plan(engine, sql, params), sql
    for sql, params in leases:
        assert "ix_messages_lease" in plan(engine, sql, params), sql


def sent(
    module: str, connection_id: str | None, *, expires: float, report: bool = True
) -> dict[str, Any]:
    return make_row(module=module, expires=expires) | {
        "status": "sent",
        "connection_id": connection_id,
        "delivery_report": report,
    }


def test_connections_wait_for_session_reports_only_while_one_is_due(engine: Engine) -> None:
    later, earlier = NOW + 600, NOW - 600
    insert(
        engine,
        [
            sent("smpp", "a", expires=later),
            sent("smpp", "a", expires=later),
            sent("smpp", None, expires=later),  # the module's stand-in
            sent("smpp", "b", expires=earlier),  # past its validity: no report will come
            sent("smpp", "c", expires=later, report=False),  # none asked for
            sent("simulator", "d", expires=later),
            make_row(module="smpp", expires=later) | {"connection_id": "e"},  # queued
        ],
    )
    with engine.connect() as conn, statements(engine) as sent_sql:
        awaiting = reports.connections_awaiting_reports(conn, ["smpp"], NOW)
        both = reports.connections_awaiting_reports(conn, ["smpp", "simulator"], NOW)
    assert awaiting == {("a", "smpp"), (None, "smpp")}
    assert both == awaiting | {("d", "simulator")}
    assert sent_sql
    for sql, params in sent_sql:
        if "'smpp'" in sql:
            assert "ix_messages_session_reports" in plan(engine, sql, params), sql


def test_the_session_report_index_names_every_module_with_its_own_session() -> None:
    over_session = {
        info.name
        for info in all_modules()
        if info.provider_class is not None and info.provider_class.transport is Transport.SMPP
    }
    assert over_session == set(SESSION_REPORT_MODULES)
