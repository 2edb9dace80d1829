"""Administrators manage the opt-out list through the API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.store.optouts import add_opt_out, opted_out
from tests.support.harness import Harness

ADA = "+31612345678"
BOB = "+31623456789"


async def subscribed(h: Harness) -> str:
    """A webhook subscription to opt-out changes (to a port nobody listens on)."""
    await h.configure(webhooks={"allow_private": ["127.0.0.0/8"]})
    response = await h.post(
        "/api/v1/webhooks", {"url": "http://127.0.0.1:9/events", "events": ["optout.changed"]}
    )
    assert response.status_code == 201, response.text
    subscription_id: str = response.json()["id"]
    return subscription_id


def announced(h: Harness, subscription_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The events queued for the subscription, oldest first."""
    rows = h.service.webhooks.store.deliveries(subscription_id=subscription_id)
    envelopes = [json.loads(row.payload) for row in reversed(rows)]
    return [(e["type"], e["data"]) for e in envelopes]


async def test_add_list_and_remove_through_the_api(any_db_harness: Harness) -> None:
    """Local numbers are normalised; adding twice keeps the first entry; removing twice is 404."""
    h = any_db_harness
    await h.configure(default_country_code="+31")
    subscription_id = await subscribed(h)
    added = await h.post("/api/v1/opt-outs", {"number": "06 1234 5678"})
    assert added.status_code == 201, added.text
    assert added.json() | {"created_at": None} == {
        "number": ADA,
        "keyword": None,
        "source": "api",
        "inbound_id": None,
        "created_at": None,
        "added": True,
    }
    again = await h.post("/api/v1/opt-outs", {"number": ADA})
    assert again.status_code == 200 and again.json()["added"] is False
    listed = (await h.get("/api/v1/opt-outs")).json()
    assert [o["number"] for o in listed["opt_outs"]] == [ADA] and listed["next_cursor"] is None
    with h.service.engine.connect() as conn:
        assert opted_out(conn, [ADA, BOB]) == {ADA}
    removed = await h.client.delete("/api/v1/opt-outs/0612345678", headers=h.headers)
    assert removed.status_code == 204
    missing = await h.client.delete(f"/api/v1/opt-outs/{ADA}", headers=h.headers)
    assert missing.status_code == 404 and ADA in missing.json()["error"]["message"]
    assert (await h.get("/api/v1/opt-outs")).json()["opt_outs"] == []
    assert announced(h, subscription_id) == [
        ("optout.changed", {"number": ADA, "opted_out": True, "source": "api", "keyword": None}),
        ("optout.changed", {"number": ADA, "opted_out": False, "source": "api", "keyword": None}),
    ]


async def test_listing_is_newest_first_paged_and_searchable(harness: Harness) -> None:
    """Numbers that texted STOP are listed with their keyword next to those an admin added."""
    h = harness
    h.service.writer.run_sync(
        lambda c: add_opt_out(c, BOB, keyword="STOP", source="sms", inbound_id="I1", now=100.0)
    )
    assert (await h.post("/api/v1/opt-outs", {"number": ADA})).status_code == 201
    first = (await h.get("/api/v1/opt-outs", params={"limit": 1})).json()
    assert [o["number"] for o in first["opt_outs"]] == [ADA]
    rest = (
        await h.get("/api/v1/opt-outs", params={"limit": 1, "cursor": first["next_cursor"]})
    ).json()
    assert [(o["number"], o["keyword"], o["source"]) for o in rest["opt_outs"]] == [
        (BOB, "STOP", "sms")
    ]
    assert rest["next_cursor"] is None
    found = (await h.get("/api/v1/opt-outs", params={"search": "623"})).json()["opt_outs"]
    assert [o["number"] for o in found] == [BOB]
    bad = await h.get("/api/v1/opt-outs", params={"cursor": "garbage"})
    assert bad.status_code == 422


async def test_changes_need_an_admin_key_and_a_valid_number(harness: Harness) -> None:
    h = harness
    _, key = h.service.keys.create("sender", "sender")
    headers = {"Authorization": f"Bearer {key}"}
    refused = await h.client.post("/api/v1/opt-outs", json={"number": ADA}, headers=headers)
    assert refused.status_code == 403
    assert (await h.client.get("/api/v1/opt-outs", headers=headers)).status_code == 200
    invalid = await h.post("/api/v1/opt-outs", {"number": "12"})
    assert invalid.status_code == 422
    assert invalid.json()["error"]["fields"][0]["field"] == "number"


def test_cli_add_list_remove(tmp_path: Path) -> None:
    run = CliRunner(env={"SMSDESK_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})

    def invoke(*args: str, code: int = 0) -> Any:
        result = run.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result

    invoke("settings", "set", "default_country_code=+31")
    assert f"{ADA} opted out" in invoke("optouts", "add", "0612345678").stdout
    assert "already" in invoke("optouts", "add", ADA).stdout
    listed = invoke("optouts", "list").stdout
    assert ADA in listed and "cli" in listed
    assert f"{ADA} removed" in invoke("optouts", "remove", ADA).stdout
    assert "not on the opt-out list" in invoke("optouts", "remove", ADA, code=1).stderr
    assert "no numbers opted out" in invoke("optouts", "list").stderr
    assert "too short" in invoke("optouts", "add", "12", code=1).stderr
