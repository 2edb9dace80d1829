"""`smsdesk backup` and `smsdesk restore`: while the service runs, across schema versions."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from smsdesk.cli import app
from smsdesk.store import db
from tests.support.harness import Harness, running_service
from tests.support.postgres import PostgresServer, admin_sql
from tests.support.processes import smsdesk_command, smsdesk_env

TO = "+31612345678"


def cli(*args: str, **env: str | Path) -> Result:
    """The smsdesk command in-process, with exactly the SMSDESK_* variables given."""
    variables: dict[str, str | None] = {f"SMSDESK_{k.upper()}": str(v) for k, v in env.items()}
    return CliRunner(env={"SMSDESK_SECRET_KEY": None, "COLUMNS": "200", **variables}).invoke(
        app, list(args)
    )


async def accept(h: Harness, n: int) -> str:
    response = await h.post("/api/v1/messages", {"to": TO, "text": f"message {n}"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def revision_of(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])


async def test_sqlite_backup_while_sending_restores_every_message_accepted_before(
    tmp_path: Path,
) -> None:
    live, restored, file = tmp_path / "live", tmp_path / "restored", tmp_path / "b.sqlite3"
    async with running_service(live) as h:
        await h.configure(module_settings={"simulator": {"report_delay": 0.01}})
        before = [await accept(h, n) for n in range(30)]
        stop, during = asyncio.Event(), list[str]()

        async def keep_accepting() -> None:
            while not stop.is_set():
                during.append(await accept(h, len(before) + len(during)))

        sender = asyncio.create_task(keep_accepting())
        process = await asyncio.create_subprocess_exec(
            *smsdesk_command(),
            "backup",
            str(file),
            env=smsdesk_env(data_dir=live),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await process.communicate()
        stop.set()
        await sender
    assert process.returncode == 0, stderr.decode()
    assert during, "no message was accepted while the backup ran"
    assert "not in this backup" in stderr.decode()

    result = cli("restore", str(file), data_dir=restored)
    assert result.exit_code == 0, result.output
    shutil.copy(live / "secret.key", restored / "secret.key")  # as the warning tells operators
    database = restored / "smsdesk.sqlite3"
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    async with running_service(restored) as h:
        for message_id in before:
            response = await h.get(f"/api/v1/messages/{message_id}")
            assert response.status_code == 200, message_id


def old_database(path: Path, revision: str) -> Path:
    """A SQLite file built with the project's migrations up to `revision` only."""
    engine = db.create_engine(f"sqlite:///{path}")
    db.upgrade(engine, revision)
    engine.dispose()
    return path


def test_restore_migrates_a_backup_of_an_older_schema(tmp_path: Path) -> None:
    backup = old_database(tmp_path / "old.sqlite3", "0003")
    result = cli("restore", str(backup), data_dir=tmp_path / "data")
    assert result.exit_code == 0, result.output
    head = db_head()
    assert f"schema revision 0003, migrated to {head}" in result.stdout
    assert revision_of(tmp_path / "data" / "smsdesk.sqlite3") == head
    assert revision_of(backup) == "0003"  # the backup itself is left as it was


def db_head() -> str:
    from smsdesk.store.backup import known_revisions

    return known_revisions()[-1]


def test_restore_refuses_a_backup_made_by_a_newer_version(tmp_path: Path) -> None:
    backup = old_database(tmp_path / "new.sqlite3", "head")
    with sqlite3.connect(backup) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0999_future'")
    result = cli("restore", str(backup), data_dir=tmp_path / "data")
    assert result.exit_code != 0
    assert "newer smsdesk" in result.stderr and "0999_future" in result.stderr
    assert not (tmp_path / "data" / "smsdesk.sqlite3").exists()


def test_restore_refuses_a_file_that_is_no_smsdesk_database(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    result = cli("restore", str(junk), data_dir=tmp_path / "data")
    assert result.exit_code != 0 and "no smsdesk schema version" in result.stderr


async def test_restore_goes_into_a_database_that_was_migrated_but_never_used(
    tmp_path: Path,
) -> None:
    """A migrated database has its schema, audit anchor and own keys, and nothing of a user's."""
    source, target = tmp_path / "source", tmp_path / "target"
    async with running_service(source, dispatcher=False) as h:
        kept = await accept(h, 1)
    assert cli("backup", str(tmp_path / "b.sqlite3"), data_dir=source).exit_code == 0
    assert cli("db", "upgrade", data_dir=target).exit_code == 0

    restored = cli("restore", str(tmp_path / "b.sqlite3"), data_dir=target)
    assert restored.exit_code == 0, restored.output
    async with running_service(target, dispatcher=False) as h:
        assert (await h.get(f"/api/v1/messages/{kept}")).status_code == 200


async def test_restore_keeps_existing_data_unless_forced(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    async with running_service(source, dispatcher=False) as h:
        kept_elsewhere = await accept(h, 1)
    assert cli("backup", str(tmp_path / "b.sqlite3"), data_dir=source).exit_code == 0
    async with running_service(target, dispatcher=False) as h:
        existing = await accept(h, 2)

    refused = cli("restore", str(tmp_path / "b.sqlite3"), data_dir=target)
    assert refused.exit_code != 0 and "--force" in refused.stderr
    async with running_service(target, dispatcher=False) as h:
        assert (await h.get(f"/api/v1/messages/{existing}")).status_code == 200

    forced = cli("restore", str(tmp_path / "b.sqlite3"), "--force", data_dir=target)
    assert forced.exit_code == 0, forced.output
    async with running_service(target, dispatcher=False) as h:
        assert (await h.get(f"/api/v1/messages/{kept_elsewhere}")).status_code == 200
        assert (await h.get(f"/api/v1/messages/{existing}")).status_code == 404


def test_backup_says_where_the_key_is_and_leaves_it_out(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli("db", "upgrade", data_dir=data).exit_code == 0
    (data / "secret.key").unlink()  # as if it had been lost
    missing = cli("backup", str(tmp_path / "a.sqlite3"), data_dir=data)
    assert missing.exit_code == 0, missing.output
    assert "No secret key was found" in missing.stderr
    assert "cannot decrypt the stored provider secrets" in missing.stderr

    (data / "secret.key").write_text("file-key\n")
    in_file = cli("backup", str(tmp_path / "b.sqlite3"), data_dir=data)
    assert f"The secret key is in {(data / 'secret.key').resolve()}" in in_file.stderr
    assert "not in this backup" in in_file.stderr
    assert not (tmp_path / "b.sqlite3.key").exists()
    assert b"file-key" not in (tmp_path / "b.sqlite3").read_bytes()

    in_env = cli("backup", str(tmp_path / "c.sqlite3"), data_dir=data, secret_key="env-key")
    assert "The secret key is set in SMSDESK_SECRET_KEY" in in_env.stderr


def test_include_key_writes_it_beside_the_backup_with_a_warning(tmp_path: Path) -> None:
    data, restored = tmp_path / "data", tmp_path / "restored"
    assert cli("db", "upgrade", data_dir=data).exit_code == 0
    (data / "secret.key").write_text("file-key\n")  # replaces the generated key
    result = cli("backup", str(tmp_path / "b.sqlite3"), "--include-key", data_dir=data)
    assert result.exit_code == 0, result.output
    key_copy = tmp_path / "b.sqlite3.key"
    assert key_copy.read_text() == "file-key\n" and key_copy.stat().st_mode & 0o077 == 0
    assert "anyone holding both files can read the stored secrets" in result.stderr

    assert cli("restore", str(tmp_path / "b.sqlite3"), data_dir=restored).exit_code == 0
    assert (restored / "secret.key").read_text() == "file-key\n"


@pytest.fixture
def pg_database(postgres: PostgresServer) -> Iterator[Callable[..., str]]:
    """A factory of empty databases on the test server, dropped afterwards."""
    created: list[str] = []

    def make(template: str = "template0") -> str:
        name = f"b_{uuid.uuid4().hex[:12]}"
        admin_sql(postgres, f"CREATE DATABASE {name} TEMPLATE {template}")
        created.append(name)
        return postgres.url(name)

    yield make
    for name in created:
        admin_sql(postgres, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.postgres
async def test_postgres_round_trip_with_pg_dump_and_pg_restore(
    tmp_path: Path, pg_database: Callable[..., str]
) -> None:
    source, target = pg_database("smsdesk_template"), pg_database()
    async with running_service(tmp_path / "a", source, dispatcher=False) as h:
        ids = [await accept(h, n) for n in range(5)]
    file = tmp_path / "pg.dump"
    done = cli("backup", str(file), database_url=source, data_dir=tmp_path / "a")
    assert done.exit_code == 0, done.output
    assert file.read_bytes()[:5] == b"PGDMP"

    restored = cli("restore", str(file), database_url=target, data_dir=tmp_path / "b")
    assert restored.exit_code == 0, restored.output
    async with running_service(tmp_path / "b", target, dispatcher=False) as h:
        for message_id in ids:
            assert (await h.get(f"/api/v1/messages/{message_id}")).status_code == 200

    again = cli("restore", str(file), database_url=target, data_dir=tmp_path / "b")
    assert again.exit_code != 0 and "--force" in again.stderr
    forced = cli("restore", str(file), "--force", database_url=target, data_dir=tmp_path / "b")
    assert forced.exit_code == 0, forced.output


@pytest.mark.postgres
def test_postgres_restore_refuses_a_dump_of_a_newer_schema(
    tmp_path: Path, pg_database: Callable[..., str]
) -> None:
    source, target = pg_database("smsdesk_template"), pg_database()
    engine = db.create_engine(source)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0999_future'"))
    engine.dispose()
    file = tmp_path / "pg.dump"
    assert cli("backup", str(file), database_url=source, data_dir=tmp_path).exit_code == 0
    result = cli("restore", str(file), database_url=target, data_dir=tmp_path)
    assert result.exit_code != 0 and "newer smsdesk" in result.stderr


@pytest.mark.postgres
def test_missing_pg_dump_prints_the_command_to_run(
    tmp_path: Path, pg_database: Callable[..., str]
) -> None:
    source = pg_database("smsdesk_template")
    empty = tmp_path / "bin"
    empty.mkdir()
    file = tmp_path / "pg.dump"
    result = cli("backup", str(file), database_url=source, data_dir=tmp_path, pg_bin=empty)
    assert result.exit_code != 0
    assert "pg_dump is not installed" in result.stderr
    assert f"pg_dump -Fc --no-owner --file={file} --dbname=postgresql://" in result.stderr
    assert not file.exists()
    restore = cli("restore", str(file), database_url=source, data_dir=tmp_path, pg_bin=empty)
    assert restore.exit_code != 0 and "pg_restore --clean" in restore.stderr


def test_a_sqlite_backup_is_one_self_contained_file(tmp_path: Path) -> None:
    """A backup is a single SQLite file: no -wal or -shm file is needed beside it."""
    data = tmp_path / "data"
    assert cli("db", "upgrade", data_dir=data).exit_code == 0
    assert cli("backup", str(tmp_path / "b.sqlite3"), data_dir=data).exit_code == 0
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tmp_path / "b.sqlite3", alone / "b.sqlite3")
    assert revision_of(alone / "b.sqlite3") == db_head()
    assert not list(tmp_path.glob("b.sqlite3-*"))
