"""API keys: shown once when created, stored as a SHA-256 hash, looked up by a short prefix.

A key carries 256 random bits, so a fast hash is as safe at rest as a slow one: nobody can
guess such a key from its hash, and a slow password hash (argon2: tens of milliseconds and
64 MiB per check) would only cost every new connection's first request. Keys stored as argon2
hashes by earlier versions still work; the first check rewrites their hash as SHA-256.

A presented key is looked up once: afterwards it is known by the SHA-256 of what was
presented, and only whether it was revoked is looked up again (cheaply, by id) once
`cache_seconds` (1 s) have passed. So a key
revoked through this store is refused at once, and one revoked by another process (the CLI,
another `serve` or `worker` on the same database) within a second, at the cost of one query per
key per second. Requests presenting the same unverified key wait for one verification instead of
each running their own, and at most `max_hashing` argon2 checks run at once, so a burst cannot
exhaust memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy.engine import Engine

from smsdesk.domain.audit import Actor
from smsdesk.domain.ids import new_id
from smsdesk.store.audit import AuditTrail
from smsdesk.store.db import write_transaction
from smsdesk.store.tables import api_keys

ROLES = ("admin", "sender")
SHA256 = "sha256$"  # the stored form of a key's hash: SHA256 + hex digest
_hasher = PasswordHasher()  # for keys stored by earlier versions


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    role: str
    prefix: str
    created_at: float
    revoked_at: float | None = None
    transactional: bool = False  # may send to numbers that opted out (e.g. one-time codes)

    @property
    def may_send_transactional(self) -> bool:
        return self.role == "admin" or self.transactional


class ApiKeyStore:
    def __init__(
        self,
        engine: Engine,
        cache_seconds: float = 1.0,
        max_hashing: int = 2,
        *,
        clock: Callable[[], float] = time.monotonic,
        trail: AuditTrail | None = None,
    ) -> None:
        self.engine = engine
        self.trail = trail  # where creations and revocations with an actor are recorded
        self.cache_seconds = cache_seconds
        self.clock = clock  # for the cache's ages only (a fake one in tests)
        self._cache: dict[str, tuple[float, ApiKey]] = {}  # digest -> (checked at, key)
        self._lock = threading.Lock()
        # Revocations through this store: a check that read the row before one must not cache it.
        self._revocations = 0
        self._verifying: dict[str, threading.Lock] = {}
        self._hashing = threading.BoundedSemaphore(max_hashing)
        self.hash_checks = 0  # stored hashes compared with a presented key (tests, metrics)

    def create(
        self,
        name: str,
        role: str = "admin",
        *,
        transactional: bool = False,
        actor: Actor | None = None,
    ) -> tuple[ApiKey, str]:
        """Make a key; the plain key is returned once and never stored (nor audited)."""
        if role not in ROLES:
            raise ValueError(f"Role must be one of {', '.join(ROLES)}, not '{role}'.")
        prefix = secrets.token_hex(6)
        plain = f"sd_{prefix}_{secrets.token_urlsafe(32)}"
        key = ApiKey(new_id(), name, role, prefix, time.time(), transactional=transactional)
        with write_transaction(self.engine) as conn, conn.begin():
            conn.execute(
                api_keys.insert().values(
                    id=key.id,
                    name=name,
                    prefix=prefix,
                    hash=SHA256 + _digest(plain),
                    role=role,
                    created_at=key.created_at,
                    transactional=transactional,
                )
            )
            if actor is not None and self.trail is not None:
                self.trail.record(
                    conn,
                    actor,
                    "apikey.created",
                    target_kind="apikey",
                    target_id=key.id,
                    details={"name": name, "role": role, "transactional": transactional},
                )
        return key, plain

    def list(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).all()
        return [
            ApiKey(r.id, r.name, r.role, r.prefix, r.created_at, r.revoked_at, r.transactional)
            for r in rows
        ]

    def revoke(self, key_id_or_prefix: str, actor: Actor | None = None) -> bool:
        chosen = sa.or_(api_keys.c.id == key_id_or_prefix, api_keys.c.prefix == key_id_or_prefix)
        with write_transaction(self.engine) as conn, conn.begin():
            found = conn.execute(
                sa.select(api_keys.c.id, api_keys.c.name).where(
                    chosen, api_keys.c.revoked_at.is_(None)
                )
            ).all()
            done = conn.execute(
                api_keys.update()
                .where(chosen, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            ).rowcount
            if actor is not None and self.trail is not None:
                for row in found:
                    self.trail.record(
                        conn,
                        actor,
                        "apikey.revoked",
                        target_kind="apikey",
                        target_id=row.id,
                        details={"name": row.name},
                    )
        with self._lock:  # after the commit: a check reading the row from now on sees it revoked
            self._revocations += 1
            self._cache.clear()
        return bool(done)

    def cached(self, presented: str) -> ApiKey | None:
        """The key if it was checked recently (no hashing, no I/O: safe on the event loop)."""
        cached = self._cache.get(_digest(presented))
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        return None

    def _fresh(self, checked_at: float) -> bool:
        """Checked less than `cache_seconds` ago (a clock that went back counts as stale)."""
        return 0 <= self.clock() - checked_at < self.cache_seconds

    def verify(self, presented: str) -> ApiKey | None:
        """The active key matching what a client presented, or None (may block: I/O, argon2)."""
        digest = _digest(presented)
        with self._lock:
            gate = self._verifying.setdefault(digest, threading.Lock())
        with gate:  # one verification per presented key at a time; the others reuse it
            try:
                return self._verify(presented, digest)
            finally:
                with self._lock:
                    self._verifying.pop(digest, None)

    def _verify(self, presented: str, digest: str) -> ApiKey | None:
        cached = self._cache.get(digest)
        if cached is not None:
            if self._fresh(cached[0]):
                return cached[1]
            return self._recheck(digest, cached[1])
        parts = presented.split("_")
        if len(parts) < 3 or parts[0] != "sd":
            return None
        revocations, read_at = self._revocations, self.clock()
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(api_keys).where(
                    api_keys.c.prefix == parts[1], api_keys.c.revoked_at.is_(None)
                )
            ).first()
        if row is None or not self._matches(row.id, row.hash, presented, digest):
            return None
        key = ApiKey(
            row.id, row.name, row.role, row.prefix, row.created_at, transactional=row.transactional
        )
        self._keep(digest, key, revocations, read_at)
        return key

    def _matches(self, key_id: str, stored: str, presented: str, digest: str) -> bool:
        """Whether `presented` is the key stored as `stored`; an argon2 hash from an earlier
        version is checked the slow way once and then stored as SHA-256."""
        self.hash_checks += 1
        if stored.startswith(SHA256):
            return hmac.compare_digest(stored.removeprefix(SHA256), digest)
        with self._hashing:
            try:
                _hasher.verify(stored, presented)
            except VerificationError:
                return False
        with write_transaction(self.engine) as conn, conn.begin():
            conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.hash == stored)
                .values(hash=SHA256 + digest)
            )
        return True

    def _recheck(self, digest: str, key: ApiKey) -> ApiKey | None:
        """A key verified before: is it still active, with which role? (By id, no hashing.)"""
        revocations, read_at = self._revocations, self.clock()
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(api_keys.c.revoked_at, api_keys.c.role, api_keys.c.transactional).where(
                    api_keys.c.id == key.id
                )
            ).first()
        if row is None or row.revoked_at is not None:
            with self._lock:
                self._cache.pop(digest, None)
            return None
        key = replace(key, role=row.role, transactional=row.transactional)
        self._keep(digest, key, revocations, read_at)
        return key

    def _keep(self, digest: str, key: ApiKey, revocations: int, read_at: float) -> None:
        """Cache a key read as active, unless this store revoked a key since it was read.

        Its age counts from before the read, so a revocation elsewhere is seen within
        `cache_seconds` of it however long the hashing took.
        """
        with self._lock:
            if self._revocations == revocations:
                self._cache[digest] = (read_at, key)
            else:
                self._cache.pop(digest, None)


def _digest(presented: str) -> str:
    return hashlib.sha256(presented.encode()).hexdigest()
