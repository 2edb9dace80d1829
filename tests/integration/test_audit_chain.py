"""The audit trail's chain: `smsdesk audit verify` finds removed, altered and added entries,
and writers in several processes at once still make one valid chain."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.domain.audit import Actor
from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store import audit, db
from smsdesk.store.tables import audit_log
from tests.conftest import database_url

KEY = b"k" * 32


def append_many(engine: Engine, count: int, name: str = "anna") -> None:
    for n in range(count):
        with db.write_transaction(engine) as conn, conn.begin():
            audit.append(
                conn,
                KEY,
                Actor.user(1, name, "10.0.0.1"),
                "configuration.changed",
                1000.0 + n,
                target_kind="configuration",
                target_id="sms",
                details={"fields": [f"field{n}"]},
            )


def check(engine: Engine) -> audit.Verification:
    with engine.connect() as conn:
        return audit.verify(conn, KEY)


def ids(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit_log.c.id).order_by(audit_log.c.id)).scalars())


def test_an_untouched_trail_is_intact(engine: Engine) -> None:
    """Every entry is checked and nothing is reported."""
    append_many(engine, 5)
    result = check(engine)
    assert (result.intact, result.checked, result.problems) == (True, 5, [])


def test_a_removed_entry_in_the_middle_is_found(engine: Engine) -> None:
    append_many(engine, 5)
    middle = ids(engine)[2]
    with engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.id == middle))
    result = check(engine)
    assert not result.intact
    assert any(
        f"Entry {middle + 1} does not follow entry {middle - 1}" in p for p in result.problems
    )


def test_removing_the_newest_entries_is_found(engine: Engine) -> None:
    append_many(engine, 5)
    newest = ids(engine)[-1]
    with engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.id >= newest - 1))
    result = check(engine)
    assert not result.intact
    assert any("newer entries were removed" in p for p in result.problems)


def test_an_edited_entry_is_found(engine: Engine) -> None:
    """Changing who did it, or what, breaks that entry's hash."""
    append_many(engine, 4)
    edited = ids(engine)[1]
    with engine.begin() as conn:
        conn.execute(
            audit_log.update().where(audit_log.c.id == edited).values(actor_name="mallory")
        )
    result = check(engine)
    assert result.problems == [f"Entry {edited} was altered after it was written."]


def test_an_entry_added_behind_smsdesks_back_is_found(engine: Engine) -> None:
    append_many(engine, 2)
    with engine.begin() as conn:
        row = conn.execute(sa.select(audit_log).order_by(audit_log.c.id.desc())).first()
        assert row is not None
        forged = {**row._mapping, "id": row.id + 1, "prev_hash": row.hash, "actor_name": "x"}
        conn.execute(audit_log.insert().values(**forged))
    result = check(engine)
    assert any("added outside smsdesk" in p for p in result.problems)


def test_two_writers_at_once_make_one_valid_chain(engine: Engine) -> None:
    """Two connections appending together (as two processes would) leave an intact chain."""
    threads = [
        threading.Thread(target=append_many, args=(engine, 40, name)) for name in ("anna", "bo")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = check(engine)
    assert (result.intact, result.checked) == (True, 80), result.problems


def test_a_check_during_appends_reports_no_false_break(engine: Engine) -> None:
    """Entries committed while a check runs are left for the next check, not called forged."""
    done = threading.Event()

    def writer() -> None:
        try:
            append_many(engine, 150)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    checks = 0
    while not done.is_set() or checks == 0:
        result = check(engine)
        assert result.intact, result.problems
        checks += 1
    thread.join()
    assert check(engine).checked == 150


def _cli(tmp_path: Path, engine: Engine) -> CliRunner:
    return CliRunner(
        env={
            "SMSDESK_DATA_DIR": str(tmp_path / "data"),
            "SMSDESK_DATABASE_URL": database_url(engine),
            "COLUMNS": "200",
        }
    )


def test_audit_verify_says_intact_or_names_each_break(tmp_path: Path, engine: Engine) -> None:
    """Exit 0 with the count when intact; exit 1 with one line per break when not."""
    service = Service(AppConfig(data_dir=tmp_path / "data", database_url=database_url(engine)))
    service.upgrade()
    for n in range(3):
        service.audit(Actor.cli(), "user.created", target_kind="user", target_id=str(n))
    service.close()
    cli = _cli(tmp_path, engine)
    intact = cli.invoke(app, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "intact, 3 entries checked" in intact.output
    second = ids(engine)[1]
    with engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.id == second).values(action="x.y"))
    broken = cli.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1
    assert f"Entry {second} was altered" in broken.output
    assert "not intact" in broken.output
