"""Storing the SMS configuration: one JSON document, secrets encrypted field by field (the
modules' secret fields and the e-mail section's password).

The selected module's settings and limits live in the default connection (`connections.py`);
the document keeps the other modules' fields, parked for when one is selected again. `load()`
puts the default connection's module, fields and limits into the configuration it returns (with
the routing table attached), and `save()` writes them back there, so the configuration screen,
API and CLI edit the default connection as they edited the selected module.

Which fields are secret is each module's settings model's to say; the store is handed a lookup
(`settings_model_of`, raising LookupError for a module this build does not have) rather than
knowing the modules itself.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from smsdesk.crypto import SecretBox
from smsdesk.domain.audit import Actor
from smsdesk.domain.connections import Connection
from smsdesk.domain.settings import ModuleLimits, SmsConfiguration, secret_fields
from smsdesk.domain.sms import ModuleSettings
from smsdesk.store.audit import AuditTrail
from smsdesk.store.connections import ConnectionStore
from smsdesk.store.db import write_transaction
from smsdesk.store.routes import attach_routing
from smsdesk.store.tables import settings

SMS_KEY = "sms"
CALLBACK_KEY = "callback_secret"
_ENCRYPTED = "$encrypted"


class ConfigurationStore:
    """Loads and saves the SMS configuration; caches it briefly for the hot path."""

    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        settings_model_of: Callable[[str], type[ModuleSettings]],
        cache_seconds: float = 1.0,
        *,
        trail: AuditTrail | None = None,
    ) -> None:
        self.engine = engine
        self.trail = trail
        self.box = box
        self.settings_model_of = settings_model_of
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, int, SmsConfiguration] | None = None
        self._callback_secret: str | None = None
        self._lock = threading.Lock()
        self._saves = 0
        self.connections = ConnectionStore(
            engine, box, settings_model_of, cache_seconds, trail=trail, on_change=self.forget
        )

    def load(self) -> SmsConfiguration:
        """The current configuration (defaults if none was ever saved), showing the default
        connection as the selected module.

        A save in this process is seen at once; one in another process within `cache_seconds`.
        """
        fresh = self.fresh()
        if fresh is not None:
            return fresh
        saves_before = self._saves
        changes_before = self.connections.changes
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(settings).where(settings.c.key == SMS_KEY)).first()
            stored = self.connections.read(conn)
            config = SmsConfiguration() if row is None else self._decode(json.loads(row.value))
            config = attach_routing(conn, with_default_connection(config, stored), stored)
        self.connections.remember(stored, changes_before)
        version = (row.version if row else 0) + sum(c.version for c in stored if c.is_default)
        with self._lock:
            # A save that finished while we were reading makes what we read stale: don't keep it.
            if self._saves == saves_before:
                self._cached = (time.monotonic(), version, config)
        return config

    def fresh(self) -> SmsConfiguration | None:
        """The cached configuration while it is fresh, else None: what `load` would return
        without reading the database, so a caller on the event loop needs no thread for it."""
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[2]
        return None

    async def current(self) -> SmsConfiguration:
        """`load` for a caller on the event loop: the cached configuration while it is fresh,
        without a thread; only a stale one is read, in a thread."""
        cached = self.fresh()
        return cached if cached is not None else await asyncio.to_thread(self.load)

    def version(self) -> int:
        self.load()
        return self._cached[1] if self._cached else 0

    def forget(self) -> None:
        """Drop the cached configuration (the connections changed in this process)."""
        with self._lock:
            self._saves += 1
            self._cached = None

    def save(self, config: SmsConfiguration, actor: Actor | None = None) -> None:
        """Store `config`: the selected module's fields and limits in the default connection,
        the rest in the document. With an `actor`, the names of the fields that changed go to
        the audit trail in the same transaction (secret fields by name only)."""
        selected = config.module
        document = config.model_copy(
            update={
                "module_settings": {
                    k: v for k, v in config.module_settings.items() if k != selected
                },
                "limits": {k: v for k, v in config.limits.items() if k != selected},
            }
        )
        value = json.dumps(self._encode(document))
        limits = config.limits_for(selected)
        if actor is not None and self.trail is not None:
            _ = self.trail.key  # made on first use, in a transaction of its own: before ours
        with self._lock:
            with write_transaction(self.engine) as conn, conn.begin():
                row = conn.execute(
                    sa.select(settings.c.version, settings.c.value).where(settings.c.key == SMS_KEY)
                ).first()
                before_connections = self.connections.read(conn) if actor is not None else ()
                if row is None:
                    conn.execute(
                        settings.insert().values(
                            key=SMS_KEY, value=value, version=1, updated_at=time.time()
                        )
                    )
                else:
                    conn.execute(
                        settings.update()
                        .where(settings.c.key == SMS_KEY)
                        .values(value=value, version=row.version + 1, updated_at=time.time())
                    )
                self.connections.write_default(
                    conn,
                    selected,
                    config.module_settings.get(selected, {}),
                    limits.rate_limit,
                    limits.concurrency,
                )
                if actor is not None and self.trail is not None:
                    before = SmsConfiguration() if row is None else self._stored(row.value)
                    before = with_default_connection(before, before_connections)
                    changed = changed_fields(_plain(before), _plain(config))
                    if changed:
                        self.trail.record(
                            conn,
                            actor,
                            "configuration.changed",
                            target_kind="configuration",
                            target_id=SMS_KEY,
                            details={"fields": changed},
                        )
            # Counted once committed: a load that read the old row before the commit must not
            # keep it (counting inside the transaction let such a load cache it for a second).
            self._saves += 1
            self._cached = None
        self.connections.forget()

    def _stored(self, value: str) -> SmsConfiguration:
        try:
            return self._decode(json.loads(value))
        except Exception:  # unreadable (e.g. a retired key): every field counts as changed
            return SmsConfiguration()

    def callback_secret(self) -> str:
        """The per-installation secret that makes callback URLs unguessable; made on first use.

        Nothing changes it while the service runs, so it is read once: every delivery report
        and inbound SMS checks it."""
        if self._callback_secret is None:
            try:
                self._callback_secret = self._read_or_create_callback_secret()
            except IntegrityError:
                # Another process made it between our read and our insert (PostgreSQL, where
                # the read takes no lock): theirs is the one.
                self._callback_secret = self._read_or_create_callback_secret()
        return self._callback_secret

    def known_callback_secret(self) -> str | None:
        """The callback secret once this process has read it (None before): no database."""
        return self._callback_secret

    def _read_or_create_callback_secret(self) -> str:
        with write_transaction(self.engine) as conn, conn.begin():
            row = conn.execute(
                sa.select(settings.c.value).where(settings.c.key == CALLBACK_KEY)
            ).scalar()
            if row is not None:
                return self.box.decrypt(row)
            secret = secrets.token_urlsafe(24)
            conn.execute(
                settings.insert().values(
                    key=CALLBACK_KEY,
                    value=self.box.encrypt(secret),
                    version=1,
                    updated_at=time.time(),
                )
            )
            return secret

    def _encode(self, config: SmsConfiguration) -> dict[str, Any]:
        doc = config.model_dump(mode="json", exclude={"module_settings"})
        doc["module_settings"] = {}
        for name, fields in config.module_settings.items():
            secret_names = secret_fields(self.settings_model_of(name))
            out: dict[str, Any] = {}
            for key, value in fields.items():
                if key in secret_names:
                    plain = value.get_secret_value() if isinstance(value, SecretStr) else value
                    out[key] = {_ENCRYPTED: self.box.encrypt(plain or "")}
                else:
                    out[key] = value
            doc["module_settings"][name] = out
        password = config.email.password.get_secret_value()
        doc["email"]["password"] = {_ENCRYPTED: self.box.encrypt(password)} if password else ""
        return doc

    def _decode(self, doc: dict[str, Any]) -> SmsConfiguration:
        email = doc.get("email")
        if isinstance(email, dict) and isinstance(email.get("password"), dict):
            email["password"] = self.box.decrypt(email["password"][_ENCRYPTED])
        modules: dict[str, dict[str, Any]] = {}
        for name, fields in doc.pop("module_settings", {}).items():
            try:
                self.settings_model_of(name)
            except LookupError:
                continue
            modules[name] = {
                key: SecretStr(self.box.decrypt(value[_ENCRYPTED]))
                if isinstance(value, dict) and _ENCRYPTED in value
                else value
                for key, value in fields.items()
            }
        return SmsConfiguration.model_validate({**doc, "module_settings": modules})


def with_default_connection(
    config: SmsConfiguration, stored: tuple[Connection, ...]
) -> SmsConfiguration:
    """`config` with the default connection as its selected module: its module, its fields
    and its limits (the document's parked fields of other modules stay)."""
    default = next((c for c in stored if c.is_default), None)
    if default is None:
        return config
    modules = {**config.module_settings, default.module: dict(default.settings)}
    limits = {
        **config.limits,
        default.module: ModuleLimits(
            rate_limit=default.rate_limit, concurrency=default.concurrency
        ),
    }
    return config.model_copy(
        update={"module": default.module, "module_settings": modules, "limits": limits}
    )


def _plain(config: SmsConfiguration) -> dict[str, Any]:
    """The document with secrets in the clear, for comparing (never stored or shown)."""
    doc: dict[str, Any] = _reveal(config.model_dump(mode="python"))
    return doc


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(v) for v in value]
    return value


def changed_fields(before: Any, after: Any, prefix: str = "") -> list[str]:
    """The dotted names of the fields whose values differ (names only, never values)."""
    if isinstance(before, dict) or isinstance(after, dict):
        before = before if isinstance(before, dict) else {}
        after = after if isinstance(after, dict) else {}
        out: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            out.extend(changed_fields(before.get(key), after.get(key), name))
        return out
    return [] if before == after else [prefix or "(all)"]
