"""Notifications from the command line and the API: `smsdesk users set`, the notifications
list, Send test e-mail, and the SMTP password through TOML export/import and key rotation."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import SecretStr
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.crypto import add_new_key
from smsdesk.domain.email_settings import EmailSettings
from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store.notifications import list_notifications
from smsdesk.store.secrets import not_under_newest, reseal_all
from smsdesk.testing import free_port
from tests.support.harness import Harness
from tests.support.smtp import SmtpInbox
from tests.support.webui import create_user

PASSWORD = "correct horse battery staple"
SMTP_SECRET = "smtp-secret-for-rotation"


def runner(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"SMSDESK_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})


def service(tmp_path: Path) -> Service:
    made = Service(AppConfig(data_dir=tmp_path / "data"))
    made.settings.cache_seconds = 0
    return made


def test_users_set_stores_contact_details_and_choices(tmp_path: Path) -> None:
    """`smsdesk users set` takes the address, a nationally typed number and choices per event;
    events not named keep their choice; a wrong event or channel is refused and names them."""
    cli = runner(tmp_path)
    cli.invoke(app, ["users", "create", "anna", "--password-stdin"], input=PASSWORD)
    cli.invoke(app, ["settings", "set", "default_country_code=+31"])
    done = cli.invoke(
        app,
        [
            "users", "set", "anna", "--email", "anna@example.org", "--phone", "06 1234 5678",
            "--time-zone", "Europe/Amsterdam",
            "--notify", "request.assigned=email,sms", "--notify", "request.new_in_group=email",
        ],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "mobile +31612345678" in done.output
    later = cli.invoke(app, ["users", "set", "anna", "--notify", "request.new_in_group=none"])
    assert later.exit_code == 0, later.output
    contact = service(tmp_path).users.contact("anna")
    assert (contact.email, contact.phone, contact.time_zone) == (
        "anna@example.org",
        "+31612345678",
        "Europe/Amsterdam",
    )
    assert json.loads(contact.notify) == {"request.assigned": ["email", "sms"]}
    listed = cli.invoke(app, ["users", "list"])
    assert "anna@example.org" in listed.output and "+31612345678" in listed.output

    wrong = cli.invoke(app, ["users", "set", "anna", "--notify", "request.closed=email"])
    assert wrong.exit_code == 1 and "request.assigned" in wrong.output
    pigeon = cli.invoke(app, ["users", "set", "anna", "--notify", "request.assigned=pigeon"])
    assert pigeon.exit_code == 1 and "not pigeon" in pigeon.output
    no_phone = cli.invoke(app, ["users", "set", "anna", "--phone", ""])
    assert no_phone.exit_code == 1 and "mobile number" in no_phone.output
    nobody = cli.invoke(app, ["users", "set", "zoe", "--email", "z@example.org"])
    assert nobody.exit_code == 1 and "no user named 'zoe'" in nobody.output


def test_the_smtp_password_is_masked_in_toml_and_re_encrypted_by_rotation(tmp_path: Path) -> None:
    """Export shows the password masked; importing that file keeps it; after a new key is
    added the password is found under the old key, re-encrypted, and still reads the same."""
    cli = runner(tmp_path)
    svc = service(tmp_path)
    svc.upgrade()
    try:
        email = EmailSettings(
            host="smtp.example.org", sender="desk@example.org", password=SecretStr(SMTP_SECRET)
        )
        svc.settings.save(svc.settings.load().model_copy(update={"email": email}))
    finally:
        svc.close()
    exported = cli.invoke(app, ["settings", "export"])
    assert exported.exit_code == 0, exported.output
    assert SMTP_SECRET not in exported.output and 'password = "********"' in exported.output
    toml = tmp_path / "settings.toml"
    toml.write_text(exported.output.replace("port = 587", "port = 2525"))
    imported = cli.invoke(app, ["settings", "import", str(toml)])
    assert imported.exit_code == 0, imported.output

    add_new_key(tmp_path / "data")
    svc = service(tmp_path)
    try:
        assert "SMS configuration field email.password" in not_under_newest(svc.engine, svc.box)
        assert reseal_all(svc.engine, svc.box)["SMS configuration secret fields"] >= 1
        assert not_under_newest(svc.engine, svc.box) == []
        stored = svc.settings.load().email
        assert (stored.port, stored.password.get_secret_value()) == (2525, SMTP_SECRET)
    finally:
        svc.close()


async def test_the_api_sends_a_test_email_and_lists_notifications(harness: Harness) -> None:
    """POST /api/v1/settings/email/test reaches the mail server (200) or reports its failure
    (502); GET /api/v1/notifications lists each notification with its status."""
    h = harness
    with SmtpInbox() as inbox:
        email = {"host": "127.0.0.1", "port": inbox.port, "security": "none", "sender": "d@x.org"}
        not_yet = await h.post("/api/v1/settings/email/test", {"to": "me@example.org"})
        assert not_yet.status_code == 409
        await h.configure(email=email)
        sent = await h.post("/api/v1/settings/email/test", {"to": "me@example.org"})
        assert sent.status_code == 200, sent.text
        assert [m.rcpt_tos for m in inbox.received()] == [["me@example.org"]]
        bad = await h.post("/api/v1/settings/email/test", {"to": "nobody"})
        assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "to"
        down = await h.post(
            "/api/v1/settings/email/test",
            {"to": "me@example.org", "email": {"port": free_port()}},
        )
        assert down.status_code == 502 and "Could not send" in down.json()["error"]["message"]

        create_user(h.service, "anna", "agent")
        h.service.users.set_contact(
            "anna",
            {"email": "anna@example.org", "notify": json.dumps({"request.assigned": ["email"]})},
        )
        made = await h.post("/api/v1/requests", {"number": "+31612345678", "text": "Hello"})
        await h.client.patch(
            f"/api/v1/requests/{made.json()['id']}", json={"owner": "anna"}, headers=h.headers
        )
        await h.wait_until(lambda: len(inbox.received()) == 2, "the notification e-mail")

    def all_sent() -> bool:
        with h.service.engine.connect() as conn:
            return {r.status for r in list_notifications(conn)} == {"sent"}

    await h.wait_until(all_sent, "the notification recorded as sent")
    answer = await h.get("/api/v1/notifications")
    assert answer.status_code == 200
    rows = answer.json()["notifications"]
    assert [(r["user"], r["event"], r["channel"], r["status"]) for r in rows] == [
        ("anna", "request.assigned", "email", "sent")
    ]
    agent_key = h.service.keys.create("agent key", "sender")[1]
    refused = await h.client.get(
        "/api/v1/notifications", headers={"Authorization": f"Bearer {agent_key}"}
    )
    assert refused.status_code == 403
