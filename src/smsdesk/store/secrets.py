"""Finding and re-encrypting every stored secret, for key rotation.

Secrets live in five places: the SMS configuration's secret fields (the parked modules' and
the e-mail password), each connection's secret fields, the callback secret, the key of keyed
hashes (`hash_key.py`) and each webhook subscription's secret. Each is re-encrypted in its own
short transaction that writes only if the stored value is still the one read, so a save made
meanwhile (already under the newest key) is never overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.crypto import SecretBox
from smsdesk.store.configuration import _ENCRYPTED, CALLBACK_KEY, SMS_KEY
from smsdesk.store.db import write_transaction
from smsdesk.store.hash_key import HASH_KEY
from smsdesk.store.tables import connections, settings
from smsdesk.store.tables import webhook_subscriptions as subs

MODULE_SETTINGS = "SMS configuration secret fields"
CONNECTIONS = "connection secret fields"
CALLBACK = "callback secret"
HASHING = "key of keyed hashes"
WEBHOOKS = "webhook subscription secrets"
KINDS = (MODULE_SETTINGS, CONNECTIONS, CALLBACK, HASHING, WEBHOOKS)


def reseal_all(engine: Engine, box: SecretBox) -> dict[str, int]:
    """Re-encrypt with the newest key every secret not yet under it; how many, per kind."""
    counts = dict.fromkeys(KINDS, 0)
    counts[MODULE_SETTINGS] = _reseal_configuration(engine, box)
    with engine.connect() as conn:
        connection_ids = list(conn.execute(sa.select(connections.c.id)).scalars())
    counts[CONNECTIONS] = sum(_reseal_connection(engine, box, c) for c in sorted(connection_ids))
    counts[CALLBACK] = _reseal_setting(engine, box, CALLBACK_KEY)
    counts[HASHING] = _reseal_setting(engine, box, HASH_KEY)
    with engine.connect() as conn:
        ids = list(conn.execute(sa.select(subs.c.id).order_by(subs.c.id)).scalars())
    counts[WEBHOOKS] = sum(_reseal_subscription(engine, box, sub_id) for sub_id in ids)
    return counts


def not_under_newest(engine: Engine, box: SecretBox) -> list[str]:
    """Which stored secrets the newest key alone cannot decrypt (named, never shown)."""
    found: list[str] = []
    with engine.connect() as conn:
        rows = {k: v for k, v in conn.execute(sa.select(settings.c.key, settings.c.value))}
        hooks = conn.execute(sa.select(subs.c.id, subs.c.secret).order_by(subs.c.id))
        webhook_rows = [(sub_id, secret) for sub_id, secret in hooks]
        sealed = conn.execute(
            sa.select(connections.c.name, connections.c.secrets).order_by(connections.c.name)
        ).all()
    if SMS_KEY in rows:
        for label, holder in _sealed_fields(json.loads(rows[SMS_KEY])):
            if not box.under_newest(holder[_ENCRYPTED]):
                found.append(f"SMS configuration field {label}")
    for name, secrets in sealed:
        for key, holder in json.loads(secrets or "{}").items():
            if not box.under_newest(holder[_ENCRYPTED]):
                found.append(f"connection {name} field {key}")
    if CALLBACK_KEY in rows and not box.under_newest(rows[CALLBACK_KEY]):
        found.append("the callback secret")
    if HASH_KEY in rows and not box.under_newest(rows[HASH_KEY]):
        found.append("the key of keyed hashes")
    found += [
        f"webhook subscription {sub_id}"
        for sub_id, secret in webhook_rows
        if not box.under_newest(secret)
    ]
    return found


def _sealed_fields(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, str]]]:
    """(module.field, the {"$encrypted": token} holder) of every encrypted field."""
    for module, fields in (doc.get("module_settings") or {}).items():
        for key, value in fields.items():
            if isinstance(value, dict) and _ENCRYPTED in value:
                yield f"{module}.{key}", value
    password = (doc.get("email") or {}).get("password")
    if isinstance(password, dict) and _ENCRYPTED in password:
        yield "email.password", password


def _reseal_configuration(engine: Engine, box: SecretBox) -> int:
    with write_transaction(engine) as conn, conn.begin():
        old = conn.execute(sa.select(settings.c.value).where(settings.c.key == SMS_KEY)).scalar()
        if old is None:
            return 0
        doc = json.loads(old)
        count = 0
        for _label, holder in _sealed_fields(doc):
            new = box.reseal(holder[_ENCRYPTED])
            if new is not None:
                holder[_ENCRYPTED] = new
                count += 1
        if not count:
            return 0
        # Same content, so the version stays: no process needs to reload its providers.
        done = conn.execute(
            settings.update()
            .where(settings.c.key == SMS_KEY, settings.c.value == old)
            .values(value=json.dumps(doc))
        ).rowcount
        return count if done else 0


def _reseal_connection(engine: Engine, box: SecretBox, connection_id: str) -> int:
    with write_transaction(engine) as conn, conn.begin():
        old = conn.execute(
            sa.select(connections.c.secrets).where(connections.c.id == connection_id)
        ).scalar()
        if old is None:
            return 0
        sealed = json.loads(old)
        count = 0
        for holder in sealed.values():
            new = box.reseal(holder[_ENCRYPTED])
            if new is not None:
                holder[_ENCRYPTED] = new
                count += 1
        if not count:
            return 0
        # Same content, so the version stays: no process needs to rebuild its provider.
        done = conn.execute(
            connections.update()
            .where(connections.c.id == connection_id, connections.c.secrets == old)
            .values(secrets=json.dumps(sealed, sort_keys=True))
        ).rowcount
        return count if done else 0


def _reseal_setting(engine: Engine, box: SecretBox, key: str) -> int:
    with write_transaction(engine) as conn, conn.begin():
        old = conn.execute(sa.select(settings.c.value).where(settings.c.key == key)).scalar()
        new = None if old is None else box.reseal(old)
        if new is None:
            return 0
        done = conn.execute(
            settings.update()
            .where(settings.c.key == key, settings.c.value == old)
            .values(value=new)
        ).rowcount
        return int(bool(done))


def _reseal_subscription(engine: Engine, box: SecretBox, sub_id: str) -> int:
    with write_transaction(engine) as conn, conn.begin():
        old = conn.execute(sa.select(subs.c.secret).where(subs.c.id == sub_id)).scalar()
        new = None if old is None else box.reseal(old)
        if new is None:
            return 0
        done = conn.execute(
            subs.update().where(subs.c.id == sub_id, subs.c.secret == old).values(secret=new)
        ).rowcount
        return int(bool(done))
