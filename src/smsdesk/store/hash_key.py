"""The installation's key for keyed hashes (the audit chain, numbers of erased customers).

A random 32-byte key, stored in the settings table encrypted with the secret key, so someone
holding the database alone can neither recompute the audit chain nor test a number against an
erased opt-out. Created on first use; key rotation re-encrypts it like every other secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from smsdesk.crypto import SecretBox
from smsdesk.store.db import write_transaction
from smsdesk.store.tables import settings

HASH_KEY = "hash_key"


def load_or_create(engine: Engine, box: SecretBox) -> bytes:
    """The key, creating it if this installation has none yet (safe when processes race)."""
    with engine.connect() as conn:
        found = _read(conn, box)
    if found is not None:
        return found
    key = os.urandom(32)
    try:
        with write_transaction(engine) as conn, conn.begin():
            found = _read(conn, box)
            if found is not None:
                return found
            conn.execute(
                settings.insert().values(
                    key=HASH_KEY,
                    value=box.encrypt(base64.b64encode(key).decode()),
                    version=1,
                    updated_at=time.time(),
                )
            )
    except IntegrityError:  # another process created it first
        with engine.connect() as conn:
            found = _read(conn, box)
        assert found is not None
        return found
    return key


def _read(conn: Connection, box: SecretBox) -> bytes | None:
    sealed = conn.execute(sa.select(settings.c.value).where(settings.c.key == HASH_KEY)).scalar()
    return None if sealed is None else base64.b64decode(box.decrypt(sealed))


def keyed_hash(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
