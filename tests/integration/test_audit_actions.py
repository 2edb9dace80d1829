"""What people and systems do is written to the audit trail: who (user, API key, command line),
what, on what, with which fields; never secret values or a customer's number, name or text."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.store.audit import AuditFilter, list_entries
from smsdesk.store.hash_key import keyed_hash
from smsdesk.store.tables import audit_log
from tests.support.harness import Harness
from tests.support.webui import PASSWORD, create_user, csrf_of, log_in, page_csrf

TO = "+31612345678"
INTELECOM = "original_intelecom"


def entries(h: Harness, action: str) -> list[Any]:
    """Entries of an action (or of a kind, ending in '.'), oldest first."""
    with h.service.engine.connect() as conn:
        return list(reversed(list_entries(conn, AuditFilter(action=action))))


def trail_text(h: Harness) -> str:
    """Every value of every audit row, as one text to search."""
    with h.service.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log)).all()
    return "\n".join(str(v) for row in rows for v in row)


def cli(h: Harness) -> CliRunner:
    """The command line on the harness's data directory and database."""
    return CliRunner(
        env={
            "SMSDESK_DATA_DIR": str(h.service.config.data_dir),
            "SMSDESK_DATABASE_URL": h.service.config.effective_database_url,
            "COLUMNS": "200",
        }
    )


async def test_configuration_changes_name_their_fields_never_secret_values(
    any_db_harness: Harness,
) -> None:
    """Through the API: the API key is the actor; a password appears by its field name only."""
    h = any_db_harness
    await h.configure(
        module=INTELECOM,
        module_settings={INTELECOM: {"username": "desk", "password": "hunter2-xyz"}},
    )
    await h.configure(module_settings={INTELECOM: {"password": "s3cond-Secret"}})
    await h.configure(module_settings={INTELECOM: {"password": ""}})  # kept: no change
    changes = entries(h, "configuration.changed")
    assert len(changes) >= 2
    last = changes[-1]
    assert (last.actor_kind, last.actor_name) == ("api_key", "test admin")
    assert (last.target_kind, last.target_id) == ("configuration", "sms")
    assert json.loads(last.details) == {"fields": [f"module_settings.{INTELECOM}.password"]}
    first_fields = json.loads(changes[-2].details)["fields"]
    assert "module" in first_fields and f"module_settings.{INTELECOM}.username" in first_fields
    text = trail_text(h)
    assert "hunter2-xyz" not in text and "s3cond-Secret" not in text


async def test_configuration_saved_on_the_screen_names_the_user(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    token = csrf_of((await admin.get("/preferences/general/sms")).text)
    form = {
        "csrf_token": token,
        "module": INTELECOM,
        "default_country_code": "+31",
        "sender": "Helpdesk",
        "plugin_configuration": "",
    }
    saved = await admin.post("/preferences/general/sms", data=form)
    assert saved.status_code == 303, saved.text
    [entry] = [e for e in entries(harness, "configuration.changed") if e.actor_kind == "user"]
    assert (entry.actor_name, entry.address) == ("admin", "127.0.0.1")
    assert "sender" in json.loads(entry.details)["fields"]


async def test_configuration_set_from_the_command_line_names_the_cli(
    any_db_harness: Harness,
) -> None:
    h = any_db_harness
    done = cli(h).invoke(app, ["settings", "set", "sender=Desk2"])
    assert done.exit_code == 0, done.output
    entry = entries(h, "configuration.changed")[-1]
    assert entry.actor_kind == "cli"
    assert json.loads(entry.details) == {"fields": ["sender"]}


async def test_users_and_api_keys_managed_on_the_command_line(any_db_harness: Harness) -> None:
    h = any_db_harness
    runner = cli(h)
    assert runner.invoke(app, ["users", "create", "anna", "--password-stdin"], input=PASSWORD)
    runner.invoke(app, ["users", "set-role", "anna", "admin"])
    runner.invoke(app, ["users", "set-password", "anna", "--password-stdin"], input=PASSWORD)
    runner.invoke(app, ["users", "delete", "anna"])
    created = runner.invoke(app, ["apikey", "create", "--name", "shop", "--role", "sender"])
    plain = created.stdout.strip().splitlines()[-1]
    prefix = plain.split("_")[1]
    runner.invoke(app, ["apikey", "revoke", prefix])
    users = entries(h, "user.")
    assert [e.action for e in users] == [
        "user.created",
        "user.role_changed",
        "user.password_changed",
        "user.deleted",
    ]
    assert all(e.actor_kind == "cli" and e.target_kind == "user" for e in users)
    assert json.loads(users[1].details) == {"username": "anna", "role": "admin"}
    keys = entries(h, "apikey.")
    assert [e.action for e in keys] == ["apikey.created", "apikey.revoked"]
    assert keys[0].target_id == keys[1].target_id
    assert json.loads(keys[0].details) == {"name": "shop", "role": "sender", "transactional": False}
    text = trail_text(h)
    assert plain not in text and PASSWORD not in text


async def test_webhook_subscriptions_keep_events_and_host_not_url_or_secret(
    any_db_harness: Harness,
) -> None:
    h = any_db_harness
    await h.configure(webhooks={"allow_private": ["127.0.0.0/8"]})
    url = "http://127.0.0.1:9/in?token=abc123token"
    made = await h.post("/api/v1/webhooks", {"url": url, "events": ["message.status"]})
    assert made.status_code == 201, made.text
    sub_id, secret = made.json()["id"], made.json()["secret"]
    changed = await h.client.patch(
        f"/api/v1/webhooks/{sub_id}", json={"active": False}, headers=h.headers
    )
    assert changed.status_code == 200
    assert (await h.client.delete(f"/api/v1/webhooks/{sub_id}", headers=h.headers)).status_code
    hooks = entries(h, "webhook.")
    assert [e.action for e in hooks] == ["webhook.created", "webhook.changed", "webhook.deleted"]
    assert {e.target_id for e in hooks} == {sub_id}
    assert json.loads(hooks[0].details) == {"events": ["message.status"], "host": "127.0.0.1"}
    assert json.loads(hooks[1].details)["fields"] == ["active"]
    text = trail_text(h)
    assert "abc123token" not in text and secret not in text


async def test_opt_out_changes_name_the_number_only_by_its_keyed_hash(
    any_db_harness: Harness,
) -> None:
    """API and CLI: added and removed, with the hash as target; the number is nowhere."""
    h = any_db_harness
    await h.configure(default_country_code="+31")
    assert (await h.post("/api/v1/opt-outs", {"number": "0612345678"})).status_code == 201
    assert (await h.post("/api/v1/opt-outs", {"number": TO})).status_code == 200  # no change
    removed = await h.client.delete(f"/api/v1/opt-outs/{TO}", headers=h.headers)
    assert removed.status_code == 204
    assert cli(h).invoke(app, ["optouts", "add", TO]).exit_code == 0
    changes = entries(h, "optout.")
    assert [(e.action, e.actor_kind) for e in changes] == [
        ("optout.added", "api_key"),
        ("optout.removed", "api_key"),
        ("optout.added", "cli"),
    ]
    assert {e.target_id for e in changes} == {keyed_hash(h.service.hash_key, TO)}
    assert all(e.target_kind == "number" for e in changes)
    text = trail_text(h)
    assert TO not in text and "612345678" not in text


async def test_inbound_actions_by_people_are_audited_by_id(any_db_harness: Harness) -> None:
    h = any_db_harness
    await h.configure(inbound={"sms_endpoint": "HELP"})
    first = await h.receive("+31612340001", "where is my parcel Jansen")
    second = await h.receive("+31612340002", "who is this")
    assert second["state"] in ("unrecognised", "invalid")
    assigned = await h.post(f"/api/v1/inbound/{first['id']}/assign", {})
    assert assigned.status_code == 200, assigned.text
    assert (await h.client.delete(f"/api/v1/inbound/{second['id']}", headers=h.headers)).is_success
    acted = entries(h, "inbound.")
    assert [(e.action, e.target_id) for e in acted] == [
        ("inbound.assigned", first["id"]),
        ("inbound.deleted", second["id"]),
    ]
    assert json.loads(acted[1].details) == {"was": second["state"]}
    text = trail_text(h)
    assert "Jansen" not in text and "+31612340001" not in text


async def test_inbox_commands_are_audited(any_db_harness: Harness) -> None:
    h = any_db_harness
    await h.configure(inbound={"sms_endpoint": "HELP"})
    received = await h.receive("+31612340003", "hello there")
    assert received["state"] == "unrecognised"
    # The command runs its own event loop, as it does in a terminal.
    done = await asyncio.to_thread(cli(h).invoke, app, ["inbox", "delete", received["id"]])
    assert done.exit_code == 0, done.output
    [entry] = entries(h, "inbound.deleted")
    assert (entry.actor_kind, entry.target_id) == ("cli", received["id"])


async def test_outbox_actions_on_the_screen_name_the_user_and_message(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    sent = await harness.post(
        "/api/v1/messages", {"to": TO, "text": "Later", "scheduled_at": tomorrow}
    )
    message_id = sent.json()["id"]
    done = await admin.post(
        f"/outbox/{message_id}/cancel", data={"csrf_token": await page_csrf(admin)}
    )
    assert done.status_code == 303
    again = await admin.post(
        f"/outbox/{message_id}/cancel", data={"csrf_token": await page_csrf(admin)}
    )
    assert again.status_code == 303  # not allowed any more: nothing to audit
    [entry] = entries(harness, "message.")
    assert (entry.action, entry.actor_kind, entry.actor_name) == (
        "message.cancelled",
        "user",
        "admin",
    )
    assert (entry.target_kind, entry.target_id) == ("message", message_id)


async def test_sends_by_people_and_api_batches_are_audited_with_counts(
    any_db_harness: Harness,
) -> None:
    """One entry per batch and per `smsdesk send`; single API sends add none."""
    h = any_db_harness
    single = await h.post("/api/v1/messages", {"to": TO, "text": "one secret text"})
    assert single.status_code == 201
    batch = await h.post(
        "/api/v1/messages/batch", {"to": [TO, "+31612345679", "nonsense"], "text": "Maintenance"}
    )
    assert batch.status_code == 200
    sent = cli(h).invoke(app, ["send", "--to", TO, "--to", "+31612345670", "--text", "Hi Jan"])
    assert sent.exit_code == 0, sent.output
    test = await h.post("/api/v1/settings/test", {"to": TO, "text": "Test"})
    assert test.status_code == 200, test.text
    sends = entries(h, "message.")
    assert [(e.action, e.actor_kind) for e in sends] == [
        ("message.batch_accepted", "api_key"),
        ("message.sent", "cli"),
        ("message.test_sent", "api_key"),
    ]
    assert json.loads(sends[0].details) == {"accepted": 2, "rejected": 1}
    assert json.loads(sends[1].details) == {"queued": 2, "rejected": 0, "transactional": False}
    assert sends[2].target_id == test.json()["id"]
    text = trail_text(h)
    for personal in (TO, "Maintenance", "Hi Jan", "one secret text"):
        assert personal not in text


async def test_secret_rotation_and_backups_are_audited(any_db_harness: Harness) -> None:
    h = any_db_harness
    runner = cli(h)
    rotated = runner.invoke(app, ["secrets", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    [entry] = entries(h, "secrets.")
    assert (entry.action, entry.actor_kind) == ("secrets.rotated", "cli")
    assert "re_encrypted" in json.loads(entry.details)


async def test_a_backup_is_audited(harness: Harness, tmp_path: Path) -> None:
    backup = cli(harness).invoke(app, ["backup", str(tmp_path / "copy.sqlite3")])
    assert backup.exit_code == 0, backup.output
    [entry] = entries(harness, "database.")
    assert (entry.action, entry.actor_kind) == ("database.backed_up", "cli")
    assert "copy.sqlite3" not in trail_text(harness)


async def test_a_reply_from_the_screen_is_audited(any_db_harness: Harness) -> None:
    h = any_db_harness
    await h.configure(inbound={"sms_endpoint": "HELP"})
    received = await h.receive(TO, "HELP my order")
    request_id = received["request_id"]
    create_user(h.service, "anna", "agent")
    async with h.browser() as agent:
        await log_in(agent, "anna")
        token = await page_csrf(agent, f"/requests/{request_id}")
        answer = await agent.post(
            f"/requests/{request_id}/reply", data={"csrf_token": token, "text": "On its way"}
        )
        assert answer.status_code == 303, answer.text
    [entry] = entries(h, "request.replied")
    assert (entry.actor_kind, entry.actor_name, entry.target_id) == ("user", "anna", request_id)
    assert "On its way" not in trail_text(h)


async def test_cancelling_through_the_api_names_the_key_and_message(
    any_db_harness: Harness,
) -> None:
    h = any_db_harness
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    sent = await h.post("/api/v1/messages", {"to": TO, "text": "Later", "scheduled_at": tomorrow})
    message_id = sent.json()["id"]
    assert (await h.post(f"/api/v1/messages/{message_id}/cancel")).status_code == 200
    [entry] = entries(h, "message.")
    assert (entry.action, entry.actor_kind, entry.actor_name, entry.target_id) == (
        "message.cancelled",
        "api_key",
        "test admin",
        message_id,
    )
