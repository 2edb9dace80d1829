"""`smsdesk users`: creating and changing the people who log in to the web interface."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.process_config import AppConfig
from smsdesk.service import Service

PASSWORD = "correct horse battery staple"


def runner(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"SMSDESK_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})


def service(tmp_path: Path) -> Service:
    return Service(AppConfig(data_dir=tmp_path / "data"))


def test_create_asks_for_the_password_twice_and_stores_only_a_hash(tmp_path: Path) -> None:
    result = runner(tmp_path).invoke(
        app, ["users", "create", "anna", "--role", "admin"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert "created admin 'anna'" in result.output
    users = service(tmp_path).users
    assert users.authenticate("anna", PASSWORD) is not None
    assert users.authenticate("ANNA", "wrong password!") is None
    assert users.authenticate("nobody", PASSWORD) is None  # checked against a dummy hash
    listed = runner(tmp_path).invoke(app, ["users", "list"])
    assert "anna" in listed.output and "admin" in listed.output


def test_create_refuses_a_short_password_a_bad_role_and_a_taken_name(tmp_path: Path) -> None:
    cli = runner(tmp_path)
    short = cli.invoke(app, ["users", "create", "bo", "--password-stdin"], input="short\n")
    assert short.exit_code == 1
    assert "at least 10 characters" in short.output
    role = cli.invoke(
        app, ["users", "create", "bo", "--role", "boss", "--password-stdin"], input=PASSWORD
    )
    assert "admin, agent" in role.output and role.exit_code == 1
    cli.invoke(app, ["users", "create", "bo", "--password-stdin"], input=PASSWORD)
    taken = cli.invoke(app, ["users", "create", "BO", "--password-stdin"], input=PASSWORD)
    assert "already a user named" in taken.output and taken.exit_code == 1
    language = cli.invoke(
        app, ["users", "create", "cy", "--language", "fr", "--password-stdin"], input=PASSWORD
    )
    assert "Unknown language 'fr'" in language.output


def test_a_new_password_ends_the_users_sessions(tmp_path: Path) -> None:
    cli = runner(tmp_path)
    cli.invoke(app, ["users", "create", "anna", "--password-stdin"], input=PASSWORD)
    users = service(tmp_path).users
    user = users.get("anna")
    assert user is not None
    token = users.start_session(user, now=1_000.0)
    assert users.session(token, now=1_001.0) is not None
    changed = cli.invoke(
        app, ["users", "set-password", "anna", "--password-stdin"], input="another long password"
    )
    assert changed.exit_code == 0, changed.output
    assert users.session(token, now=1_002.0) is None
    assert users.authenticate("anna", "another long password") is not None


def test_sessions_end_when_idle_too_long(tmp_path: Path) -> None:
    runner(tmp_path).invoke(app, ["users", "create", "anna", "--password-stdin"], input=PASSWORD)
    users = service(tmp_path).users
    user = users.get("anna")
    assert user is not None
    token = users.start_session(user, now=0.0)
    assert users.session(token, now=7 * 3600.0) is not None
    assert users.session(token, now=7 * 3600.0 + 8 * 3600.0 + 1) is None


def test_set_role_and_delete(tmp_path: Path) -> None:
    cli = runner(tmp_path)
    cli.invoke(app, ["users", "create", "anna", "--password-stdin"], input=PASSWORD)
    assert cli.invoke(app, ["users", "set-role", "anna", "admin"]).exit_code == 0
    assert service(tmp_path).users.get("anna").role == "admin"  # type: ignore[union-attr]
    assert cli.invoke(app, ["users", "delete", "anna"]).exit_code == 0
    missing = cli.invoke(app, ["users", "delete", "anna"])
    assert missing.exit_code == 1 and "no user named 'anna'" in missing.output
