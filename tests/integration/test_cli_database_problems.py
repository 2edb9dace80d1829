"""Commands that open the database say in one line why they cannot, without a traceback: the
PostgreSQL driver missing, a URL naming no driver, no server at the address, an unusable URL."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import Result

from smsdesk.cli import app
from smsdesk.testing import free_port
from tests.support.cli import cli_runner, ok
from tests.support.postgres import PostgresServer, admin_sql

COMMANDS = [["users", "list"], ["apikey", "list"], ["messages", "list"]]
PASSWORD = "s3cret-pw"


def run(data: Path, url: str, args: list[str]) -> Result:
    return cli_runner(data, SMSDESK_DATABASE_URL=url).invoke(app, args)


def one_error_line(result: Result) -> str:
    """The command ended with exit status 1 by itself (no exception) and one line on stderr."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert PASSWORD not in result.output
    return lines[0]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_missing_postgresql_driver_names_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """Without psycopg, a postgresql:// URL says which pip package brings the driver."""
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    url = f"postgresql://smsdesk:{PASSWORD}@127.0.0.1:5432/smsdesk"
    line = one_error_line(run(tmp_path, url, args))
    assert line.startswith("error: the driver for postgresql cannot be loaded (")
    assert line.endswith("install it with: pip install 'psycopg[binary]'")


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_url_naming_no_driver_says_how_to_write_it(tmp_path: Path, args: list[str]) -> None:
    url = f"postgresql+nosuchdriver://smsdesk:{PASSWORD}@127.0.0.1/smsdesk"
    assert one_error_line(run(tmp_path, url, args)) == (
        "error: the database URL names 'postgresql+nosuchdriver', which is no installed database "
        "driver; write it as postgresql://user:password@host:5432/dbname"
    )


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_no_server_at_the_address_is_one_line_with_the_reason(
    tmp_path: Path, args: list[str]
) -> None:
    """A closed port: where it tried, the driver's reason, and what to check."""
    port = free_port()
    url = f"postgresql://smsdesk:{PASSWORD}@127.0.0.1:{port}/smsdesk"
    assert one_error_line(run(tmp_path, url, args)) == (
        f"error: cannot connect to the database at 127.0.0.1:{port}/smsdesk (Connection "
        "refused); is the server running, and are --database-url / SMSDESK_DATABASE_URL right?"
    )


def test_a_url_that_is_no_url_says_how_to_write_it(tmp_path: Path) -> None:
    line = one_error_line(run(tmp_path, f"smsdesk:{PASSWORD}@db", ["users", "list"]))
    assert line == (
        "error: the database URL (--database-url / SMSDESK_DATABASE_URL) is not a URL; "
        "write it as postgresql://user:password@host:5432/dbname"
    )


def test_a_sqlite_file_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    """A directory where the SQLite file should be: SQLite's own reason, on one line."""
    (tmp_path / "db.sqlite3").mkdir()
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    line = one_error_line(run(tmp_path / "data", url, ["users", "list"]))
    assert line == (
        f"error: cannot open the SQLite database {tmp_path / 'db.sqlite3'} "
        "(unable to open database file)"
    )


@pytest.mark.postgres
def test_a_plain_postgresql_url_works_from_the_install(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """The README's postgresql://user:pw@host/db needs no extra package or driver name."""
    admin_sql(postgres, "DROP DATABASE IF EXISTS plain_url")
    admin_sql(postgres, "CREATE DATABASE plain_url")
    url = postgres.url("plain_url").replace("postgresql+psycopg://", "postgresql://")
    runner = cli_runner(tmp_path, SMSDESK_DATABASE_URL=url)
    assert "database is up to date" in ok(runner, "db", "upgrade")
    ok(runner, "users", "list")


@pytest.mark.postgres
def test_a_database_the_server_does_not_have_says_to_check_the_url(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """The server answered and refused: the reason it gave, and which parts of the URL to check."""
    url = postgres.url("no_such_db").replace("postgresql+psycopg://", "postgresql://")
    line = one_error_line(run(tmp_path, url, ["users", "list"]))
    assert line == (
        f"error: cannot connect to the database at {postgres.host}:{postgres.port}/no_such_db "
        '(database "no_such_db" does not exist); check the user, password and database name '
        "in --database-url / SMSDESK_DATABASE_URL"
    )
