"""`smsdesk templates`: keeping reply templates from a shell, and moving them as TOML files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from smsdesk.cli import app
from tests.conftest import database_url
from tests.support.cli import cli_runner, fails, ok

SHIPPED = "Hello {customer.name},\norder {prompt:order number} ships today. {{ok}}"


@pytest.fixture
def run(tmp_path: Path, engine: Engine) -> CliRunner:
    return cli_runner(tmp_path / "data", SMSDESK_DATABASE_URL=database_url(engine))


def test_add_list_edit_and_delete(run: CliRunner, tmp_path: Path) -> None:
    """A template is added from a file, found by name and language, changed and deleted."""
    body = tmp_path / "shipped.txt"
    body.write_text(SHIPPED + "\n", encoding="utf-8")
    added = ok(run, "templates", "add", "Order shipped", "-l", "en", "--body-file", str(body))
    assert "asks for: order number" in added
    ok(run, "templates", "add", "Order shipped", "-l", "nl", "--body", "Hallo {customer.name}")
    listed = ok(run, "templates", "list", "--search", "ships today")
    assert "Order shipped" in listed and "Hallo" not in listed

    ambiguous = fails(run, "templates", "edit", "Order shipped", "--body", "x")
    assert "en, nl" in ambiguous
    edited = ok(run, "templates", "edit", "order shipped", "-l", "nl", "--body", "Hoi!")
    assert "| Hoi!" in edited
    typo = fails(run, "templates", "add", "Typo", "-l", "en", "--body", "Hi {customer.nam}")
    assert "{customer.nam}" in typo and "position 4" in typo

    deleted = ok(run, "templates", "delete", "Order shipped", "--language", "nl")
    assert "deleted" in deleted
    assert "Hoi!" not in ok(run, "templates", "list")
    assert "no reply template" in fails(run, "templates", "delete", "Order shipped", "-l", "nl")


def test_export_and_import_round_trip(run: CliRunner, tmp_path: Path) -> None:
    """An exported file imports back unchanged; edits update by name and language; a bad
    entry is reported on its own and the rest still import; --dry-run changes nothing."""
    ok(run, "templates", "add", "Order shipped", "-l", "en", "--body", SHIPPED)
    ok(run, "templates", "add", "Thanks", "-l", "nl", "--body", "Bedankt, {agent.name}")
    exported = tmp_path / "templates.toml"
    ok(run, "templates", "export", str(exported))
    document = tomllib.loads(exported.read_text(encoding="utf-8"))
    assert {(t["name"], t["language"], t["body"]) for t in document["template"]} == {
        ("Order shipped", "en", SHIPPED),
        ("Thanks", "nl", "Bedankt, {agent.name}"),
    }
    again = ok(run, "templates", "import", str(exported))
    assert "0 added, 0 updated, 2 unchanged, 0 refused" in again

    changed = tmp_path / "changed.toml"
    changed.write_text(
        '[[template]]\nname = "Thanks"\nlanguage = "nl"\nbody = "Dank je wel!"\n\n'
        '[[template]]\nname = "Welcome"\nlanguage = "en"\nbody = "Welcome {customer.name}"\n\n'
        '[[template]]\nname = "Broken"\nlanguage = "en"\nbody = "Hi {name}"\n',
        encoding="utf-8",
    )
    result = run.invoke(app, ["templates", "import", str(changed), "--dry-run"])
    assert result.exit_code == 1
    assert "template 1 (Thanks, nl): would be updated" in result.stdout
    assert "template 2 (Welcome, en): would be added" in result.stdout
    assert "template 3 (Broken, en): refused" in result.stderr and "{name}" in result.stderr
    assert "Welcome" not in ok(run, "templates", "list")

    result = run.invoke(app, ["templates", "import", str(changed)])
    assert result.exit_code == 1
    assert "1 added, 1 updated, 0 unchanged, 1 refused" in result.stdout
    listed = ok(run, "templates", "export", "-")
    assert "Dank je wel!" in listed and "Welcome {customer.name}" in listed
    assert "Broken" not in listed


def test_a_file_without_templates_is_refused(run: CliRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text('title = "nothing"\n', encoding="utf-8")
    assert "[[template]]" in fails(run, "templates", "import", str(empty))
    broken = tmp_path / "broken.toml"
    broken.write_text("[[template]\n", encoding="utf-8")
    assert "not a TOML file" in fails(run, "templates", "import", str(broken))
