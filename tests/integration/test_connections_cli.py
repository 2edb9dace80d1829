"""`smsdesk connections`, `smsdesk routes` and the TOML export and import of both."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import tomli_w
from typer.testing import CliRunner

from smsdesk.commands.common import open_service
from tests.support.cli import fails, ok

TOKEN = "tok-" + "7" * 28
SID = "AC" + "b" * 32


def test_connections_and_routes_from_the_command_line(run: CliRunner, data: Path) -> None:
    """Add a connection (its token never printed), change it, route Norway to it, explain,
    move and remove; the default connection cannot be removed."""
    ok(run, "settings", "set", "default_country_code=+31")
    assert "added Reserve" in ok(
        run, "connections", "add", "Reserve", "twilio", f"account_sid={SID}", f"auth_token={TOKEN}"
    )
    assert "settings.account_sid" in fails(
        run, "connections", "add", "Bad", "twilio", "account_sid=x"
    )
    listed = ok(run, "connections", "list")
    assert "Reserve" in listed and "twilio" in listed and "closed" in listed
    shown = json.loads(ok(run, "connections", "show", "reserve"))
    assert shown["settings"]["auth_token"] == "********" and TOKEN not in json.dumps(shown)
    assert "/webhooks/connections/" in shown["callbacks"]["status"]
    ok(run, "connections", "set", "Reserve", "rate_limit=2.5", "auth_token=")
    service = open_service(data, None)
    stored = service.settings.connections.get("Reserve")
    assert stored is not None and stored.rate_limit == 2.5
    assert stored.settings["auth_token"].get_secret_value() == TOKEN
    service.close()
    assert "default connection" in fails(run, "connections", "remove", "default")

    ok(run, "routes", "add", "Norway", "--connections", "Reserve,default", "--countries", "NO")
    ok(run, "routes", "add", "Urgent", "--connections", "default", "--priorities", "1")
    assert "not a country code" in fails(
        run, "routes", "add", "X", "--connections", "default", "--countries", "Narnia"
    )
    table = ok(run, "routes", "list")
    assert table.index("Norway") < table.index("Urgent") and "Reserve → default" in table
    ok(run, "routes", "move", "Urgent", "up")
    table = ok(run, "routes", "list")
    assert table.index("Urgent") < table.index("Norway")
    explained = json.loads(ok(run, "routes", "explain", "+4790012345"))
    assert explained["route"]["name"] == "Norway" and explained["first"] == stored.id
    assert "used by route Norway" in fails(run, "connections", "remove", "Reserve")
    ok(run, "routes", "remove", "Norway")
    ok(run, "connections", "remove", "Reserve")
    assert "Reserve" not in ok(run, "connections", "list")


def test_settings_export_and_import_carry_connections_routes_and_spend(
    run: CliRunner, data: Path, tmp_path: Path
) -> None:
    """An exported file masks the token; imported again after an edit it keeps the token,
    changes what was edited and adds what is new."""
    ok(run, "settings", "set", "default_country_code=+31")
    ok(run, "connections", "add", "Reserve", "twilio", f"account_sid={SID}", f"auth_token={TOKEN}")
    ok(run, "routes", "add", "Norway", "--connections", "Reserve", "--countries", "NO")
    file = tmp_path / "sms.toml"
    ok(run, "settings", "export", str(file))
    assert TOKEN not in file.read_text()
    doc = tomllib.loads(file.read_text())
    reserve = next(c for c in doc["connections"] if c["name"] == "Reserve")
    assert reserve["settings"]["auth_token"] == "********"
    assert doc["routes"][0]["connections"] == ["Reserve"] and "spend" in doc

    reserve["rate_limit"] = 7.0
    doc["connections"].append({"name": "Sim", "module": "simulator"})
    doc["routes"].append({"name": "Sweden", "countries": ["SE"], "connections": ["Sim"]})
    doc["spend"]["daily_total"] = 100
    file.write_text(tomli_w.dumps(doc))
    ok(run, "settings", "import", str(file))

    service = open_service(data, None)
    stored = service.settings.connections.get("Reserve")
    assert stored is not None and stored.rate_limit == 7.0
    assert stored.settings["auth_token"].get_secret_value() == TOKEN
    assert service.settings.connections.get("Sim") is not None
    assert service.settings.load().spend.daily_total == 100
    service.close()
    assert "Sweden" in ok(run, "routes", "list")
