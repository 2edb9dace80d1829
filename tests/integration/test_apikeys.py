"""API keys: hashed at rest, verified once, revocation seen by every process."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store.apikeys import ApiKeyStore
from smsdesk.store.tables import api_keys


def test_the_key_is_stored_only_as_a_hash(engine: Engine) -> None:
    store = ApiKeyStore(engine)
    _, plain = store.create("crm", "sender")
    with engine.connect() as conn:
        stored = conn.execute(sa.select(api_keys.c.hash)).scalar_one()
    assert plain.split("_", 2)[2] not in stored and stored.startswith("$argon2")


def test_a_burst_with_a_new_key_hashes_it_once(engine: Engine) -> None:
    """Forty requests arriving together with the same key cost one argon2 verification."""
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
