"""The `smsdesk` command: settings, TOML import/export, API keys, queueing and reading messages."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.domain.settings import MASK
from tests.support.cli import cli_runner, fails, ok


def test_settings_show_is_parseable_in_a_narrow_terminal(tmp_path: Path) -> None:
    """Output meant for files and scripts is never wrapped to the terminal's width."""
    narrow = cli_runner(tmp_path / "data", columns=20)
    ok(narrow, "settings", "set", "module_settings.simulator.duplicate_report_rate=0.25")
    shown = tomllib.loads(ok(narrow, "settings", "show"))
    assert shown["module_settings"]["simulator"]["duplicate_report_rate"] == 0.25
    as_json = json.loads(ok(narrow, "settings", "show", "--json"))
    assert as_json["module_settings"]["simulator"]["duplicate_report_rate"] == 0.25


def test_settings_set_and_show(run: CliRunner) -> None:
    ok(run, "settings", "set", "default_country_code=+47", "sender=Support")
    shown = tomllib.loads(ok(run, "settings", "show"))
    assert (shown["default_country_code"], shown["sender"]) == ("+47", "Support")


def test_invalid_settings_are_listed_per_field_and_not_saved(run: CliRunner) -> None:
    error = fails(run, "settings", "set", "default_country_code=+999", "sender=Far too long sender")
    assert "default_country_code" in error and "sender" in error
    assert tomllib.loads(ok(run, "settings", "show"))["sender"] == "smsdesk"


def test_toml_export_and_import_round_trip_keeps_secrets(run: CliRunner, tmp_path: Path) -> None:
    """An export masks secrets; importing it elsewhere on the same installation keeps them."""
    ok(
        run,
        "settings",
        "set",
        "module=original_intelecom",
        "module_settings.original_intelecom.username=desk",
        "module_settings.original_intelecom.password=top-secret-1",
        "module_settings.original_intelecom.sms_priority=1",
    )
    exported = tmp_path / "sms.toml"
    ok(run, "settings", "export", str(exported))
    text = exported.read_text()
    assert "top-secret-1" not in text
    doc = tomllib.loads(text)
    assert doc["module_settings"]["original_intelecom"]["password"] == MASK
    ok(run, "settings", "set", "module=simulator", "sender=Other")
    ok(run, "settings", "import", str(exported))
    shown = tomllib.loads(ok(run, "settings", "show"))
    assert shown["module"] == "original_intelecom" and shown["sender"] == "smsdesk"
    assert shown["module_settings"]["original_intelecom"]["sms_priority"] == 1
    assert "top-secret-1" not in (tmp_path / "data" / "smsdesk.sqlite3").read_bytes().decode(
        "latin-1"
    )


def test_import_of_a_broken_file_says_what_is_wrong(run: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("module = \n")
    assert "cannot read" in fails(run, "settings", "import", str(broken))
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('module = "nokia"\n')
    assert "no module 'nokia'" in fails(run, "settings", "import", str(unknown))


def test_api_keys_are_shown_once_listed_without_secret_and_revocable(run: CliRunner) -> None:
    plain = ok(run, "apikey", "create", "--name", "crm", "--role", "sender").strip()
    prefix = plain.split("_")[1]
    listing = ok(run, "apikey", "list")
    assert prefix in listing and "crm" in listing and plain not in listing
    ok(run, "apikey", "revoke", prefix)
    assert "no active key" in fails(run, "apikey", "revoke", prefix)
    assert "Role must be one of admin, sender" in fails(
        run, "apikey", "create", "--name", "x", "--role", "boss"
    )


def test_send_queues_valid_numbers_and_reports_the_rest(run: CliRunner, tmp_path: Path) -> None:
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("+31612345678\n\n+4791234567\n")
    result = run.invoke(
        app,
        ["send", "--text", "Hello", "--to-file", str(numbers), "--to", "12", "--priority", "1"],
    )
    assert result.exit_code == 1
    assert result.stdout.count("queued") == 2
    assert "12:" in result.stderr and "no country code" in result.stderr
    listing = ok(run, "messages", "list", "--status", "queued")
    assert "+31612345678" in listing and "+4791234567" in listing
    message_id = result.stdout.split()[0]
    shown = ok(run, "messages", "show", message_id)
    assert '"priority": 1' in shown and '"status": "queued"' in shown
    assert "no message" in fails(run, "messages", "show", "01NOSUCHMESSAGE")


def test_send_without_numbers_explains(run: CliRunner) -> None:
    assert "--to" in fails(run, "send", "--text", "Hello")


def test_db_upgrade_is_repeatable(run: CliRunner) -> None:
    assert "up to date" in ok(run, "db", "upgrade")
    assert "up to date" in ok(run, "db", "upgrade")


def test_settings_callbacks_prints_the_urls_for_the_providers_portal(run: CliRunner) -> None:
    shown = ok(run, "settings", "callbacks", "cm", "--public-url", "https://sms.example.com/")
    status, inbound = (line.split()[1] for line in shown.splitlines())
    assert status.startswith("https://sms.example.com/webhooks/cm/status/")
    assert inbound.startswith("https://sms.example.com/webhooks/cm/inbound/")
    assert status.rsplit("/", 1)[1] == inbound.rsplit("/", 1)[1]
    # The secret is made once and kept: the URLs entered at the provider stay valid.
    assert (
        ok(run, "settings", "callbacks", "cm", "--public-url", "https://sms.example.com") == shown
    )
    assert "There is no module 'nope'" in fails(run, "settings", "callbacks", "nope")
