"""Storing the SMS configuration: one JSON document, secrets encrypted field by field.

Which fields are secret is each module's settings model's to say; the store is handed a lookup
(`settings_model_of`, raising LookupError for a module this build does not have) rather than
knowing the modules itself.
"""

from __future__ import annotations

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
from smsdesk.domain.settings import SmsConfiguration, secret_fields
from smsdesk.domain.sms import ModuleSettings
from smsdesk.store.db import write_transaction
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
    ) -> None:
        self.engine = engine
        self.box = box
        self.settings_model_of = settings_model_of
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, int, SmsConfiguration] | None = None
        self._lock = threading.Lock()
        self._saves = 0

    def load(self) -> SmsConfiguration:
        """The current configuration (defaults if none was ever saved).

        A save in this process is seen at once; one in another process within `cache_seconds`.
        """
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[2]
        saves_before = self._saves
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(settings).where(settings.c.key == SMS_KEY)).first()
        config = SmsConfiguration() if row is None else self._decode(json.loads(row.value))
        with self._lock:
            # A save that finished while we were reading makes what we read stale: don't keep it.
            if self._saves == saves_before:
                self._cached = (time.monotonic(), row.version if row else 0, config)
        return config

    def version(self) -> int:
        self.load()
        return self._cached[1] if self._cached else 0

    def save(self, config: SmsConfiguration) -> None:
        value = json.dumps(self._encode(config))
        with self._lock:
            with write_transaction(self.engine) as conn, conn.begin():
                current = conn.execute(
                    sa.select(settings.c.version).where(settings.c.key == SMS_KEY)
                ).scalar()
                if current is None:
                    conn.execute(
                        settings.insert().values(
                            key=SMS_KEY, value=value, version=1, updated_at=time.time()
                        )
                    )
                else:
                    conn.execute(
                        settings.update()
                        .where(settings.c.key == SMS_KEY)
                        .values(value=value, version=current + 1, updated_at=time.time())
                    )
            # Counted once committed: a load that read the old row before the commit must not
            # keep it (counting inside the transaction let such a load cache it for a second).
            self._saves += 1
            self._cached = None

    def callback_secret(self) -> str:
        """The per-installation secret that makes callback URLs unguessable; made on first use."""
        try:
            return self._read_or_create_callback_secret()
        except IntegrityError:
            # Another process made it between our read and our insert (PostgreSQL, where the
            # read takes no lock): theirs is the one.
            return self._read_or_create_callback_secret()

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
        return doc

    def _decode(self, doc: dict[str, Any]) -> SmsConfiguration:
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
