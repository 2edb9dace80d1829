"""An installation from before connections, upgraded: same settings, one default connection,
and it goes on sending through the same module with the same callback URLs (SQLite and
PostgreSQL)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from smsdesk.crypto import SecretBox, load_or_create_keys
from smsdesk.domain.settings import secret_fields
from smsdesk.providers.registry import get_module
from smsdesk.store import db
from smsdesk.testing.fakes.twilio import TwilioFake
from tests.conftest import database_url
from tests.support.harness import running_service

CALLBACK_SECRET = "old-callback-secret-0123456789"
CM_TOKEN = "0f0e0d0c-0b0a-4908-8706-050403020100"
TO = "+31612345678"


def downgrade_to(engine: Engine, revision: str) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    with db.write_transaction(engine) as connection, connection.begin():
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def sealed(box: SecretBox, module: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A module's fields as the SMS configuration document stored them: secrets encrypted."""
    secrets = secret_fields(get_module(module).settings_model)
    return {
        k: {"$encrypted": box.encrypt(str(v))} if k in secrets else v for k, v in fields.items()
    }


def seed_0004(engine: Engine, box: SecretBox, fake: TwilioFake) -> dict[str, Any]:
    """Twilio selected (its auth token encrypted), CM parked with its token, a callback secret,
    a message still queued and one sent long ago; returns the configuration document."""
    now = time.time()
    doc = {
        "module": "twilio",
        "sender": "Smsdesk",
        "default_country_code": "+31",
        "module_settings": {
            "twilio": sealed(box, "twilio", fake.module_settings()),
            "cm": sealed(box, "cm", {"product_token": CM_TOKEN, "max_parts": 3}),
        },
        "limits": {"twilio": {"rate_limit": 0.0, "concurrency": 3}},
    }
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO settings (key, value, version, updated_at) VALUES (:k, :v, 7, 0)"),
            [
                {"k": "sms", "v": json.dumps(doc)},
                {"k": "callback_secret", "v": box.encrypt(CALLBACK_SECRET)},
            ],
        )
        conn.execute(
            sa.text(
                "INSERT INTO messages (id, module, recipient, sender, body, encoding, segments,"
                " priority, status, created_at, updated_at, next_attempt_at, expires_at,"
                " attempts, is_test, delivery_report, transactional)"
                " VALUES (:id, 'twilio', :to, 'Smsdesk', :body, 'GSM7', 1, 2, :status, :at,"
                " :at, :at, :expires, 0, false, true, false)"
            ),
            [
                {
                    "id": "01JWAITING0000000000000000",
                    "to": TO,
                    "body": "Queued before the upgrade",
                    "status": "queued",
                    "at": now,
                    "expires": now + 3600,
                },
                {
                    "id": "01JOLD000000000000000000SE",
                    "to": "+32470123456",
                    "body": "Sent long ago",
                    "status": "delivered",
                    "at": now - 86_400,
                    "expires": now,
                },
            ],
        )
    return doc


async def test_an_upgraded_installation_keeps_its_settings_and_sends_as_before(
    tmp_path: Path, engine: Engine
) -> None:
    """After the upgrade the selected module is the one default connection with the same
    (decryptable) secrets; the parked module keeps its fields; a queued message and a new one
    are sent through Twilio and their reports come back on the old callback URL."""
    downgrade_to(engine, "0004")
    box = SecretBox(load_or_create_keys(tmp_path))
    fake = TwilioFake().start()
    try:
        seed_0004(engine, box, fake)
        async with running_service(tmp_path, database_url(engine), listen=True) as harness:
            store = harness.service.settings
            [default] = store.connections.all()
            assert (default.id, default.name, default.module) == ("default", "default", "twilio")
            assert default.is_default and default.enabled and default.concurrency == 3
            assert isinstance(default.settings["auth_token"], SecretStr)
            assert default.settings["auth_token"].get_secret_value() == fake.auth_token

            config = store.load()
            assert config.module == "twilio" and config.sender == "Smsdesk"
            assert config.module_settings["twilio"]["account_sid"] == fake.account_sid
            assert config.limits_for("twilio").concurrency == 3
            parked = config.module_settings["cm"]
            assert parked["product_token"].get_secret_value() == CM_TOKEN
            assert parked["max_parts"] == 3
            assert config.spend.allowed_countries == ["BE", "NL"]

            old = await harness.wait_for("01JWAITING0000000000000000", "sent")
            response = await harness.post("/api/v1/messages", {"to": TO, "text": "After"})
            assert response.status_code == 201, response.text
            new = await harness.wait_for(response.json()["id"], "sent")

            url = f"{harness.service.public_url}/webhooks/twilio/status/{CALLBACK_SECRET}"
            for body in (old, new):
                assert body["module"] == "twilio"
                sms = fake.find(body["provider_message_id"])
                assert sms.callback_url == url
                answer = await fake.send_report(harness.client, sms, delivered=True)
                assert answer.status_code == 200, answer.text
                await harness.wait_for(body["id"], "delivered")
    finally:
        fake.stop()


def test_a_downgrade_puts_the_default_connection_back_into_the_document(
    tmp_path: Path, engine: Engine
) -> None:
    """Upgraded and downgraded again, the document holds the selected module's fields (the
    same sealed tokens) and limits as before; the allow-list goes."""
    downgrade_to(engine, "0004")
    box = SecretBox(load_or_create_keys(tmp_path))
    with TwilioFake() as fake:
        before = seed_0004(engine, box, fake)
    db.upgrade(engine)
    with engine.connect() as conn:
        moved = json.loads(
            conn.execute(sa.text("SELECT value FROM settings WHERE key = 'sms'")).scalar_one()
        )
    assert "twilio" not in moved["module_settings"] and moved["limits"] == {}
    downgrade_to(engine, "0007")
    with engine.connect() as conn:
        after = json.loads(
            conn.execute(sa.text("SELECT value FROM settings WHERE key = 'sms'")).scalar_one()
        )
    assert after["module"] == "twilio" and "spend" not in after
    assert after["module_settings"] == before["module_settings"]
    assert after["limits"] == {"twilio": {"rate_limit": 0.0, "concurrency": 3}}
