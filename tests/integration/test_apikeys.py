"""API keys: hashed at rest, verified once, revocation seen by every process; keys hashed
with argon2 by earlier versions keep working."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.store.apikeys import ApiKeyStore
from smsdesk.store.tables import api_keys
from smsdesk.testing import FakeClock
from tests.conftest import database_url
from tests.support.harness import running_service


def test_the_key_is_stored_only_as_a_hash(engine: Engine) -> None:
    store = ApiKeyStore(engine)
    _, plain = store.create("crm", "sender")
    with engine.connect() as conn:
        stored = conn.execute(sa.select(api_keys.c.hash)).scalar_one()
    assert plain.split("_", 2)[2] not in stored and stored.startswith("sha256$")


def test_a_key_stored_as_argon2_still_works_and_is_rehashed_once(engine: Engine) -> None:
    """A key created by an earlier version (argon2) is accepted, and stored as SHA-256 after."""
    store = ApiKeyStore(engine)
    key, plain = store.create("crm")
    legacy = PasswordHasher().hash(plain)
    with engine.begin() as conn:
        conn.execute(api_keys.update().values(hash=legacy))
    assert store.verify(f"sd_{key.prefix}_not-the-secret") is None
    with engine.connect() as conn:
        assert conn.execute(sa.select(api_keys.c.hash)).scalar_one() == legacy
    verified = ApiKeyStore(engine).verify(plain)
    assert verified is not None and verified.id == key.id
    with engine.connect() as conn:
        assert conn.execute(sa.select(api_keys.c.hash)).scalar_one().startswith("sha256$")
    again = ApiKeyStore(engine).verify(plain)
    assert again is not None and again.id == key.id


def test_a_burst_with_a_new_key_hashes_it_once(engine: Engine) -> None:
    """Forty requests arriving together with the same key cost one lookup and check."""
    store = ApiKeyStore(engine)
    key, plain = store.create("crm")
    found = []
    barrier = threading.Barrier(40)

    def request() -> None:
        barrier.wait()
        found.append(store.cached(plain) or store.verify(plain))

    threads = [threading.Thread(target=request) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [k.id if k else None for k in found] == [key.id] * 40
    assert store.hash_checks == 1


def test_an_expired_cache_entry_is_rechecked_without_hashing(engine: Engine) -> None:
    store = ApiKeyStore(engine, cache_seconds=0)
    key, plain = store.create("crm")
    for _ in range(5):
        verified = store.verify(plain)
        assert verified is not None and verified.id == key.id
    assert store.hash_checks == 1


def test_revocation_in_another_process_is_noticed(engine: Engine) -> None:
    serving = ApiKeyStore(engine, cache_seconds=0)
    admin = ApiKeyStore(engine)
    key, plain = admin.create("crm")
    assert serving.verify(plain) is not None
    assert admin.revoke(key.prefix)
    assert serving.verify(plain) is None
    assert serving.cached(plain) is None


def test_wrong_and_malformed_keys_are_refused(engine: Engine) -> None:
    store = ApiKeyStore(engine)
    _, plain = store.create("crm")
    prefix = plain.split("_")[1]
    assert store.verify(f"sd_{prefix}_not-the-secret") is None
    assert store.verify("sd_000000000000_whatever") is None
    assert store.verify("Bearer nonsense") is None
    assert store.hash_checks == 1  # only the key with a real prefix cost a hash


def test_a_key_revoked_here_is_refused_at_once(engine: Engine) -> None:
    clock = FakeClock()
    store = ApiKeyStore(engine, clock=clock)
    key, plain = store.create("crm")
    assert store.verify(plain) is not None and store.cached(plain) is not None
    assert store.revoke(key.prefix)
    assert store.cached(plain) is None and store.verify(plain) is None


def test_a_key_revoked_by_another_process_is_refused_within_a_second(engine: Engine) -> None:
    """Another store on the same database stands for the CLI or another `serve`/`worker`."""
    clock = FakeClock()
    serving, elsewhere = ApiKeyStore(engine, clock=clock), ApiKeyStore(engine)
    key, plain = elsewhere.create("crm")
    assert serving.verify(plain) is not None
    assert elsewhere.revoke(key.prefix)
    clock.advance(0.999)
    assert serving.cached(plain) is not None  # allowed: less than a second has passed
    clock.advance(0.001)
    assert serving.cached(plain) is None and serving.verify(plain) is None
    assert serving.hash_checks == 1


def test_a_check_that_read_the_key_before_it_was_revoked_does_not_keep_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A verification still hashing when the key is revoked here must not cache it afterwards."""
    store = ApiKeyStore(engine, clock=FakeClock())
    key, plain = store.create("crm")
    hashing, go_on = threading.Event(), threading.Event()
    matches = ApiKeyStore._matches

    def held_check(self: ApiKeyStore, *args: str) -> bool:
        hashing.set()
        assert go_on.wait(10)
        return matches(self, *args)

    monkeypatch.setattr(ApiKeyStore, "_matches", held_check)
    checking = threading.Thread(target=store.verify, args=(plain,))
    checking.start()
    assert hashing.wait(10)
    assert store.revoke(key.prefix)
    go_on.set()
    checking.join()
    assert store.cached(plain) is None and store.verify(plain) is None


async def test_the_api_refuses_a_key_revoked_with_the_cli_within_a_second(
    tmp_path: Path, engine: Engine
) -> None:
    """`smsdesk apikey revoke` runs in a process of its own; a running `serve` sees it in 1 s."""
    clock = FakeClock()
    url = database_url(engine)
    async with running_service(tmp_path, url, dispatcher=False, clock=clock) as h:
        _, plain = h.service.keys.create("crm", "sender")
        headers = {"Authorization": f"Bearer {plain}"}
        body = {"to": "+4799999999", "text": "hi"}
        assert (await h.client.post("/api/v1/messages", json=body, headers=headers)).is_success
        cli = CliRunner(env={"SMSDESK_DATA_DIR": str(tmp_path), "SMSDESK_DATABASE_URL": url})
        revoked = cli.invoke(app, ["apikey", "revoke", plain.split("_")[1]])
        assert revoked.exit_code == 0, revoked.output
        clock.advance(0.5)
        assert (await h.client.post("/api/v1/messages", json=body, headers=headers)).is_success
        clock.advance(0.5)
        refused = await h.client.post("/api/v1/messages", json=body, headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
