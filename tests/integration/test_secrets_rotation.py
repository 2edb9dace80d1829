"""`smsdesk secrets rotate` and `retire`: every secret under a new key, every process reading."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.crypto import KEY_FILE, SecretBox, SecretKeyError, add_new_key, load_or_create_keys
from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store.configuration import CALLBACK_KEY, SMS_KEY
from smsdesk.store.tables import settings, webhook_subscriptions
from tests.conftest import database_url

PASSWORD = "hunter2-rotation-pw"
WEBHOOK_SECRET = "whsec-rotation-0123456789abcdef"
HOOK_URL = "https://93.184.216.34/hook"


def runner(tmp_path: Path, engine: Engine, secret_key: str | None = None) -> CliRunner:
    env = {
        "SMSDESK_DATA_DIR": str(tmp_path / "data"),
        "SMSDESK_DATABASE_URL": database_url(engine),
        "COLUMNS": "200",
        "SMSDESK_SECRET_KEY": secret_key,
    }
    return CliRunner(env=env)


def run(cli: CliRunner, *args: str, code: int = 0) -> tuple[str, str]:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout, " ".join(result.stderr.split())  # stderr wraps to the terminal


def service(tmp_path: Path, engine: Engine, secret_key: str | None = None) -> Service:
    config = AppConfig(
        data_dir=tmp_path / "data", database_url=database_url(engine), secret_key=secret_key
    )
    made = Service(config)
    made.settings.cache_seconds = 0  # read every time: this test is about what is stored
    return made


def seed(tmp_path: Path, engine: Engine, secret_key: str | None = None) -> str:
    """A module password, the callback secret and a webhook secret; returns the callback secret."""
    svc = service(tmp_path, engine, secret_key)
    try:
        modules = {"original_intelecom": {"username": "desk", "password": PASSWORD}}
        svc.settings.save(svc.settings.load().model_copy(update={"module_settings": modules}))
        svc.webhooks.store.create(HOOK_URL, ["message.status"], secret=WEBHOOK_SECRET)
        return svc.settings.callback_secret()
    finally:
        svc.close()


def stored(engine: Engine) -> dict[str, str]:
    """The ciphertexts as they are in the database."""
    with engine.connect() as conn:
        rows = {k: v for k, v in conn.execute(sa.select(settings.c.key, settings.c.value))}
        hook = conn.execute(sa.select(webhook_subscriptions.c.secret)).scalar_one()
    return {"sms": rows[SMS_KEY], "callback": rows[CALLBACK_KEY], "webhook": hook}


def plain(svc: Service) -> tuple[str, str, str]:
    """What a process reads: the module password, the callback secret, the webhook secret."""
    password = svc.settings.load().module_settings["original_intelecom"]["password"]
    with svc.engine.connect() as conn:
        hook = conn.execute(sa.select(webhook_subscriptions.c.secret)).scalar_one()
    return password.get_secret_value(), svc.settings.callback_secret(), svc.box.decrypt(hook)


def assert_nothing_secret(text: str, callback: str) -> None:
    for secret in (PASSWORD, WEBHOOK_SECRET, callback):
        assert secret not in text


def test_rotate_re_encrypts_every_secret_which_reads_the_same(
    tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    callback = seed(tmp_path, engine)
    before = stored(engine)
    old_key = load_or_create_keys(tmp_path / "data")[0]
    out, err = run(runner(tmp_path, engine), "secrets", "rotate")
    assert "SMS configuration secret fields: 1 re-encrypted" in out
    assert "callback secret: 1 re-encrypted" in out
    assert "webhook subscription secrets: 1 re-encrypted" in out
    assert "secrets retire" in err
    assert_nothing_secret(out + err + caplog.text, callback)
    after = stored(engine)
    assert all(after[kind] != before[kind] for kind in before)
    keys = load_or_create_keys(tmp_path / "data")
    assert len(keys) == 2 and keys[1] == old_key
    fresh = service(tmp_path, engine)
    try:
        assert plain(fresh) == (PASSWORD, callback, WEBHOOK_SECRET)
    finally:
        fresh.close()


def test_a_process_started_before_rotation_reads_and_writes_under_the_new_key(
    tmp_path: Path, engine: Engine
) -> None:
    callback = seed(tmp_path, engine)
    old, new = service(tmp_path, engine), None
    try:
        assert plain(old) == (PASSWORD, callback, WEBHOOK_SECRET)
        run(runner(tmp_path, engine), "secrets", "rotate")
        new = service(tmp_path, engine)
        new.webhooks.store.update(new.webhooks.store.all()[0].id, secret=WEBHOOK_SECRET + "2")
        assert plain(old) == (PASSWORD, callback, WEBHOOK_SECRET + "2")
        newest_only = SecretBox(load_or_create_keys(tmp_path / "data")[0])
        assert newest_only.decrypt(old.box.encrypt("written by the old process")) == (
            "written by the old process"
        )
        run(runner(tmp_path, engine), "secrets", "retire")
        assert plain(old) == (PASSWORD, callback, WEBHOOK_SECRET + "2")
    finally:
        old.close()
        if new is not None:
            new.close()


def test_retire_refuses_while_a_secret_needs_the_old_key_and_then_leaves_it_unreadable(
    tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    callback = seed(tmp_path, engine)
    old_key = load_or_create_keys(tmp_path / "data")[0]
    add_new_key(tmp_path / "data")  # a rotation that stopped before re-encrypting
    cli = runner(tmp_path, engine)
    _, err = run(cli, "secrets", "retire", code=1)
    assert "3 stored secret(s) still need an older key" in err
    assert "original_intelecom.password" in err and "the callback secret" in err
    assert "webhook subscription" in err and "secrets rotate" in err
    assert len(load_or_create_keys(tmp_path / "data")) == 2
    run(cli, "secrets", "rotate")
    out, err2 = run(cli, "secrets", "retire")
    assert "Removed 2 old key(s)" in out
    assert_nothing_secret(err + out + err2 + caplog.text, callback)
    assert len(load_or_create_keys(tmp_path / "data")) == 1
    backup_key_only = SecretBox(old_key)
    for token in stored(engine).values():
        if token.startswith("{"):
            continue  # the configuration document; its fields are checked through `fresh`
        with pytest.raises(SecretKeyError):
            backup_key_only.decrypt(token)
    fresh = service(tmp_path, engine)
    try:
        assert plain(fresh) == (PASSWORD, callback, WEBHOOK_SECRET)
    finally:
        fresh.close()


def test_with_the_key_in_the_environment_the_operator_puts_the_new_key_first(
    tmp_path: Path, engine: Engine
) -> None:
    passphrase = "an old, comma-holding passphrase"
    callback = seed(tmp_path, engine, passphrase)
    before = stored(engine)
    new_key, err = run(runner(tmp_path, engine, passphrase), "secrets", "rotate")
    new_key = new_key.strip()
    assert len(new_key) == 44 and "SMSDESK_SECRET_KEY" in err and "again" in err
    assert stored(engine) == before and not (tmp_path / "data" / KEY_FILE).exists()
    ring = f"{new_key},{passphrase}"
    _, refused = run(runner(tmp_path, engine, ring), "secrets", "retire", code=1)
    assert "4 stored secret(s)" in refused  # with the audit trail's key, made at the first start
    out, _ = run(runner(tmp_path, engine, ring), "secrets", "rotate")
    assert "webhook subscription secrets: 1 re-encrypted" in out and new_key not in out
    out, _ = run(runner(tmp_path, engine, ring), "secrets", "retire")
    assert "remove the other keys" in out
    fresh = service(tmp_path, engine, new_key)
    try:
        assert plain(fresh) == (PASSWORD, callback, WEBHOOK_SECRET)
    finally:
        fresh.close()
    with pytest.raises(SecretKeyError):
        SecretBox(load_or_create_keys(tmp_path, passphrase)).decrypt(stored(engine)["webhook"])
