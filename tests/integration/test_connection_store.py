"""The connection store: connections with encrypted secrets, audited by field name, refused
where a change would break sending; the SMS configuration edits the default connection; key
rotation and retention reach the new tables (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from smsdesk.crypto import SecretBox, add_new_key, load_or_create_keys
from smsdesk.domain.audit import Actor
from smsdesk.domain.connections import Connection, ConnectionRefused
from smsdesk.domain.settings import MASK, ConfigurationInvalid
from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.sms_configuration import (
    connection_settings,
    masked_connection,
    validate_configuration,
    validate_connection,
)
from smsdesk.store import retention
from smsdesk.store.connections import ConnectionChanged, ConnectionNotFound, ConnectionStore
from smsdesk.store.secrets import CONNECTIONS, not_under_newest, reseal_all
from smsdesk.store.tables import (
    audit_log,
    connection_health,
    connection_stats,
    connections,
    messages,
    route_connections,
    routes,
    settings,
    spend_counters,
)
from tests.conftest import database_url

TOKEN = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
OTHER_TOKEN = "11111111-2222-4333-8444-555555555555"
ADMIN = Actor(kind="user", name="anna", id="1")


@pytest.fixture
def service(tmp_path: Path, engine: Engine) -> Iterator[Service]:
    made = Service(AppConfig(data_dir=tmp_path, database_url=database_url(engine)))
    made.settings.cache_seconds = 0
    made.settings.connections.cache_seconds = 0
    try:
        yield made
    finally:
        made.close()


def store_of(service: Service) -> ConnectionStore:
    return service.settings.connections


def cm_connection(name: str = "CM backup", token: str = TOKEN) -> Connection:
    submitted = {"name": name, "module": "cm", "settings": {"product_token": token}}
    return validate_connection(submitted, None)


def audit_entries(engine: Engine, action: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log.c.details).where(audit_log.c.action == action)
        ).scalars()
        return [json.loads(d) for d in rows]


def test_a_new_database_has_one_default_connection(service: Service) -> None:
    """Every migrated database starts with the default connection: the simulator."""
    [default] = store_of(service).all()
    assert (default.id, default.name, default.module) == ("default", "default", "simulator")
    assert store_of(service).default() == default
    assert service.settings.load().module == "simulator"


def test_a_connection_is_stored_with_its_secret_encrypted_and_audited_by_name(
    service: Service, engine: Engine
) -> None:
    """The token is sealed in the row and reads back as a SecretStr; the audit entry names the
    fields, never their values; the connection gets a closed circuit breaker."""
    made = store_of(service).create(cm_connection(), ADMIN)
    assert len(made.id) == 26 and made.version == 1 and not made.is_default
    with engine.connect() as conn:
        row = conn.execute(sa.select(connections).where(connections.c.id == made.id)).one()
        health = conn.execute(
            sa.select(connection_health.c.state).where(connection_health.c.connection_id == made.id)
        ).scalar_one()
    assert TOKEN not in row.settings + row.secrets
    assert set(json.loads(row.secrets)) == {"product_token"}
    assert health == "closed"
    found = store_of(service).get("cm BACKUP")
    assert found is not None and found.id == made.id
    assert found.settings["product_token"].get_secret_value() == TOKEN
    assert connection_settings(found).model_dump()["max_parts"] == 8
    [entry] = audit_entries(engine, "connection.created")
    assert entry["name"] == "CM backup" and "settings.product_token" in entry["fields"]
    assert TOKEN not in json.dumps(entry)
    assert masked_connection(found)["settings"]["product_token"] == MASK


def test_an_edit_keeps_a_secret_left_masked_and_refuses_a_stale_copy(
    service: Service, engine: Engine
) -> None:
    """Submitting the mask keeps the stored token; the version grows with each change; an
    edit made on an older version is refused; a taken name is refused."""
    store = store_of(service)
    made = store.create(cm_connection(), ADMIN)
    changed = validate_connection(
        {"settings": {"product_token": MASK, "max_parts": 3}, "rate_limit": 5}, made
    )
    after = store.update(made.id, changed, ADMIN, expected_version=1)
    assert after.version == 2 and after.rate_limit == 5.0
    assert after.settings["product_token"].get_secret_value() == TOKEN
    assert after.settings["max_parts"] == 3
    entries = audit_entries(engine, "connection.changed")
    assert entries[-1]["fields"] == ["rate_limit", "settings.max_parts"]
    with pytest.raises(ConnectionChanged):
        store.update(made.id, {"enabled": False}, ADMIN, expected_version=1)
    store.create(cm_connection("Second", OTHER_TOKEN), ADMIN)
    with pytest.raises(ConnectionRefused) as refused:
        store.update(made.id, {"name": "second"}, ADMIN)
    assert refused.value.rule == "name_taken" and refused.value.field == "name"
    with pytest.raises(ConnectionNotFound):
        store.update("nope", {"enabled": False}, ADMIN)


def test_validation_names_each_wrong_field(service: Service) -> None:
    """A bad token, an unknown module and a limit out of range are reported per field."""
    with pytest.raises(ConfigurationInvalid) as bad:
        validate_connection(
            {"name": "x", "module": "cm", "settings": {"product_token": "no"}, "concurrency": 0},
            None,
        )
    assert {e.field for e in bad.value.errors} == {"settings.product_token", "concurrency"}
    with pytest.raises(ConfigurationInvalid) as unknown:
        validate_connection({"name": "", "module": "nope"}, None)
    assert {e.field for e in unknown.value.errors} == {"name", "module"}


def test_deleting_is_refused_while_sending_depends_on_the_connection(
    service: Service, engine: Engine
) -> None:
    """The default, a connection a route names and one messages wait for stay; another goes
    with its breaker row."""
    store = store_of(service)
    with pytest.raises(ConnectionRefused) as default:
        store.delete("default", ADMIN)
    assert default.value.rule == "delete_default"
    routed = store.create(cm_connection("Routed"), ADMIN)
    waited = store.create(cm_connection("Waited for", OTHER_TOKEN), ADMIN)
    free = store.create(cm_connection("Free", OTHER_TOKEN), ADMIN)
    now = time.time()
    with engine.begin() as conn:
        conn.execute(
            routes.insert().values(
                id="R1", position=1, name="Belgium", enabled=True, countries='["BE"]',
                prefixes="[]", numbers="[]", senders="[]", priorities="[]", api_key_ids="[]",
                tags="[]", created_at=now, updated_at=now,
            )
        )  # fmt: skip
        conn.execute(
            route_connections.insert().values(route_id="R1", position=0, connection_id=routed.id)
        )
        conn.execute(
            messages.insert().values(
                id="M1", module="cm", recipient="+31612345678", sender="s", body="b",
                encoding="GSM7", segments=1, priority=2, status="queued", created_at=now,
                updated_at=now, next_attempt_at=now, expires_at=now + 60, attempts=0,
                is_test=False, delivery_report=True, transactional=False,
                connection_id="default", route_plan=json.dumps(["default", waited.id]),
            )
        )  # fmt: skip
    with pytest.raises(ConnectionRefused) as by_route:
        store.delete(routed.id, ADMIN)
    assert by_route.value.rule == "delete_routed" and "Belgium" in by_route.value.message
    with pytest.raises(ConnectionRefused) as by_message:
        store.delete(waited.id, ADMIN)
    assert by_message.value.rule == "delete_waiting"
    store.delete(free.id, ADMIN)
    assert store.get(free.id) is None
    with engine.connect() as conn:
        left = conn.execute(sa.select(connection_health.c.connection_id)).scalars().all()
    assert sorted(left) == sorted(["default", routed.id, waited.id])
    assert audit_entries(engine, "connection.deleted")[0]["name"] == "Free"


def test_another_default_is_what_the_configuration_shows(service: Service) -> None:
    """Making a CM connection the default makes the configuration's module CM with its fields;
    a default cannot be turned off, nor a turned-off connection made the default."""
    store = store_of(service)
    made = store.create(cm_connection(), ADMIN)
    store.set_default(made.id, ADMIN)
    assert store.default().id == made.id
    assert [c.is_default for c in store.all()] == [True, False]
    config = service.settings.load()
    assert config.module == "cm"
    assert config.module_settings["cm"]["product_token"].get_secret_value() == TOKEN
    with pytest.raises(ConnectionRefused) as off:
        store.update(made.id, {"enabled": False}, ADMIN)
    assert off.value.rule == "default_disabled"
    store.update("default", {"enabled": False}, ADMIN)
    with pytest.raises(ConnectionRefused) as disabled:
        store.set_default("default", ADMIN)
    assert disabled.value.rule == "default_of_disabled"


def test_the_configuration_screen_edits_the_default_connection(
    service: Service, engine: Engine
) -> None:
    """Saving the configuration writes the selected module's fields and limits to the default
    connection; switching module parks the old module's fields in the document and back
    again restores them, secrets included; one audit entry per save."""
    settings_store = service.settings
    submitted = {
        "module": "cm",
        "module_settings": {"cm": {"product_token": TOKEN}},
        "limits": {"cm": {"rate_limit": 2.5, "concurrency": 2}},
    }
    settings_store.save(validate_configuration(submitted, settings_store.load()), ADMIN)
    default = store_of(service).default()
    assert default.module == "cm" and default.rate_limit == 2.5 and default.concurrency == 2
    assert default.settings["product_token"].get_secret_value() == TOKEN
    with engine.connect() as conn:
        doc = json.loads(
            conn.execute(sa.select(settings.c.value).where(settings.c.key == "sms")).scalar_one()
        )
    assert "cm" not in doc["module_settings"] and doc["module"] == "cm"

    switched = validate_configuration({"module": "simulator"}, settings_store.load())
    settings_store.save(switched, ADMIN)
    assert store_of(service).default().module == "simulator"
    parked = settings_store.load().module_settings["cm"]
    assert parked["product_token"].get_secret_value() == TOKEN

    back = validate_configuration({"module": "cm"}, settings_store.load())
    settings_store.save(back, ADMIN)
    default = store_of(service).default()
    assert default.module == "cm" and default.rate_limit == 2.5
    assert default.settings["product_token"].get_secret_value() == TOKEN
    changes = audit_entries(engine, "configuration.changed")
    assert len(changes) == 3 and "module" in changes[1]["fields"]
    assert TOKEN not in json.dumps(changes)


def test_rotation_re_encrypts_connection_secrets(
    service: Service, engine: Engine, tmp_path: Path
) -> None:
    """Under a new key the connection's token is named as stale, re-encrypted once, and then
    read with the new key alone; its version stays (no provider needs rebuilding)."""
    made = store_of(service).create(cm_connection(), ADMIN)
    add_new_key(tmp_path)
    keys = load_or_create_keys(tmp_path)
    box = SecretBox(keys)
    assert "connection CM backup field product_token" in not_under_newest(engine, box)
    assert reseal_all(engine, box)[CONNECTIONS] == 1
    assert reseal_all(engine, box)[CONNECTIONS] == 0
    assert not [s for s in not_under_newest(engine, box) if s.startswith("connection")]
    newest_only = ConnectionStore(engine, SecretBox(keys[0]), service.settings.settings_model_of)
    found = newest_only.get(made.id)
    assert found is not None and found.version == 1
    assert found.settings["product_token"] == SecretStr(TOKEN)


def test_retention_drops_old_connection_figures_and_spend_counters(engine: Engine) -> None:
    """With the timelines, figures from before the cut-off go; newer ones stay."""
    cutoff = 1_800_000_000.0
    minute = int(cutoff // 60)
    with engine.begin() as conn:
        for at in (minute - 1, minute):
            conn.execute(
                connection_stats.insert().values(
                    connection_id="default", minute=at, attempts=1, accepted=1,
                    not_taken=0, ambiguous=0, failovers=0,
                )
            )  # fmt: skip
        for day in ("2027-01-14", "2027-01-15"):
            conn.execute(
                spend_counters.insert().values(
                    day=day, scope="total", country="", api_key_id="", messages=1,
                    segments=1, cost=0, alerted=False,
                )
            )  # fmt: skip
        retention.purge_timelines(conn, cutoff, None, 100, None)
    with engine.connect() as conn:
        minutes = conn.execute(sa.select(connection_stats.c.minute)).scalars().all()
        days = conn.execute(sa.select(spend_counters.c.day)).scalars().all()
    assert minutes == [minute]
    assert days == ["2027-01-15"]  # the cut-off falls on 2027-01-15 UTC
