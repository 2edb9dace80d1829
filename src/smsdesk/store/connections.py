"""Connections in the database: each a module with its own settings, limits and breaker.

A connection's non-secret fields are JSON in `settings`; its secret fields (which ones, the
module's settings model says, through `settings_model_of`) are `{field: {"$encrypted": token}}`
in `secrets`, the format of the SMS configuration document. Every change is audited by field
name only. `version` grows with every change, so the provider pool rebuilds a provider whose
connection changed and an edit made on a stale copy can be refused.

The list is cached for `cache_seconds` (1 s): the dispatcher reads it on every pass.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Connection as Db
from sqlalchemy.engine import Engine

from smsdesk.crypto import SecretBox
from smsdesk.domain.audit import Actor
from smsdesk.domain.connections import DEFAULT_ID, IMPLICIT_PREFIX, Connection, ConnectionRefused
from smsdesk.domain.ids import new_id
from smsdesk.domain.settings import MASK, secret_fields
from smsdesk.domain.sms import ModuleSettings
from smsdesk.store.audit import AuditTrail
from smsdesk.store.db import write_transaction
from smsdesk.store.tables import connection_health, connections, messages, route_connections, routes

ENCRYPTED = "$encrypted"
EDITABLE = frozenset(f.name for f in fields(Connection)) - {
    "id",
    "is_default",
    "version",
    "implicit",
}
_WAITING = ("queued", "sending")


class ConnectionNotFound(LookupError):
    """There is no connection with this id or name (deleted meanwhile)."""

    msgid = "There is no connection '{connection}'."

    def __init__(self, id_or_name: str) -> None:
        self.params = {"connection": id_or_name}
        super().__init__(self.msgid.format(**self.params))
        self.message = str(self)


class ConnectionChanged(Exception):
    """The connection was changed by someone else since it was read; reload and try again."""

    msgid = "Connection {name} was changed meanwhile; reload it and try again."

    def __init__(self, name: str) -> None:
        self.params = {"name": name}
        super().__init__(self.msgid.format(**self.params))
        self.message = str(self)


class ConnectionStore:
    """Reads (cached briefly) and writes connections; refuses what would break sending."""

    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        settings_model_of: Callable[[str], type[ModuleSettings]],
        cache_seconds: float = 1.0,
        *,
        trail: AuditTrail | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.box = box
        self.settings_model_of = settings_model_of
        self.cache_seconds = cache_seconds
        self.trail = trail
        self.on_change = on_change
        self._cached: tuple[float, tuple[Connection, ...]] | None = None
        self._lock = threading.Lock()
        self._changes = 0

    # Reading

    def all(self) -> tuple[Connection, ...]:
        """Every stored connection, the default first, then by name (cached for 1 s)."""
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        changes_before = self._changes
        with self.engine.connect() as conn:
            found = self.read(conn)
        self.remember(found, changes_before)
        return found

    def read(self, conn: Db) -> tuple[Connection, ...]:
        """Every stored connection as `conn` sees it (no cache)."""
        rows = conn.execute(sa.select(connections)).all()
        found = [self._decode(row) for row in rows]
        found.sort(key=lambda c: (not c.is_default, c.name.casefold()))
        return tuple(found)

    def remember(self, found: tuple[Connection, ...], changes_before: int) -> None:
        """Cache what was read, unless a change in this process finished meanwhile."""
        with self._lock:
            if self._changes == changes_before:
                self._cached = (time.monotonic(), found)

    @property
    def changes(self) -> int:
        return self._changes

    def version(self) -> int:
        """A number that changes whenever a connection is added, changed or removed."""
        text = ",".join(f"{c.id}:{c.version}:{int(c.is_default)}" for c in self.all())
        return zlib.crc32(text.encode())

    def get(self, id_or_name: str) -> Connection | None:
        """The connection with this id, else the one with this name (any case); None if none."""
        stored = self.all()
        for c in stored:
            if c.id == id_or_name:
                return c
        wanted = id_or_name.casefold()
        return next((c for c in stored if c.name.casefold() == wanted), None)

    def default(self) -> Connection:
        """The default connection (every migrated database has one)."""
        for c in self.all():
            if c.is_default:
                return c
        raise ConnectionNotFound(DEFAULT_ID)

    def forget(self) -> None:
        """Drop the cache (a change was written elsewhere in this process)."""
        with self._lock:
            self._changes += 1
            self._cached = None

    # Writing

    def create(self, connection: Connection, actor: Actor | None = None) -> Connection:
        """Store a new connection (validated by `sms_configuration.validate_connection`)."""
        now = time.time()
        made = replace(
            connection,
            id=connection.id or new_id(),
            is_default=False,
            version=1,
            implicit=False,
            settings=_without_kept_secrets(connection.settings),
        )
        with self._change(actor) as conn:
            self._refuse_name_taken(conn, made)
            conn.execute(
                connections.insert().values(
                    id=made.id, **self._values(made), is_default=False, version=1, created_at=now
                )
            )
            conn.execute(
                connection_health.insert().values(
                    connection_id=made.id, state="closed", consecutive_failures=0, updated_at=now
                )
            )
            changed = sorted(EDITABLE - {"settings"}) + [f"settings.{k}" for k in made.settings]
            self._audit(conn, actor, "connection.created", made, changed)
        return made

    def update(
        self,
        connection_id: str,
        changes: Mapping[str, Any] | Connection,
        actor: Actor | None = None,
        *,
        expected_version: int | None = None,
    ) -> Connection:
        """Apply `changes` (field → value, or a validated Connection); a secret left blank or
        as the mask keeps its stored value. Returns the connection as stored."""
        if isinstance(changes, Connection):
            changes = {name: getattr(changes, name) for name in EDITABLE}
        unknown = set(changes) - EDITABLE
        if unknown:
            raise ValueError(f"Not an editable field of a connection: {sorted(unknown)}")
        with self._change(actor) as conn:
            before = self._locked(conn, connection_id)
            if expected_version is not None and before.version != expected_version:
                raise ConnectionChanged(before.name)
            after = _merged(
                before, changes, self._secret_names(str(changes.get("module", before.module)))
            )
            if before.is_default and not after.enabled:
                raise ConnectionRefused("default_disabled", name=before.name)
            changed = _changed_fields(before, after)
            if not changed:
                return before
            after = replace(after, version=before.version + 1)
            if after.name.casefold() != before.name.casefold():
                self._refuse_name_taken(conn, after)
            conn.execute(
                connections.update()
                .where(connections.c.id == before.id)
                .values(**self._values(after), version=after.version)
            )
            self._audit(conn, actor, "connection.changed", after, changed)
        return after

    def delete(self, connection_id: str, actor: Actor | None = None) -> None:
        """Remove a connection; refused for the default, one a route names, or one that
        messages still wait for."""
        with self._change(actor) as conn:
            found = self._locked(conn, connection_id)
            if found.is_default:
                raise ConnectionRefused("delete_default", name=found.name)
            route = conn.execute(
                sa.select(routes.c.name)
                .join(route_connections, route_connections.c.route_id == routes.c.id)
                .where(route_connections.c.connection_id == found.id)
                .order_by(routes.c.position)
                .limit(1)
            ).scalar()
            if route is not None:
                raise ConnectionRefused("delete_routed", name=found.name, route=route)
            waiting = conn.execute(
                sa.select(sa.func.count())
                .select_from(messages)
                .where(
                    messages.c.status.in_(_WAITING),
                    sa.or_(
                        messages.c.connection_id == found.id,
                        messages.c.route_plan.contains(json.dumps(found.id)),
                    ),
                )
            ).scalar_one()
            if waiting:
                raise ConnectionRefused("delete_waiting", name=found.name, count=waiting)
            # SQLite enforces no foreign keys here: remove the breaker row ourselves.
            conn.execute(
                connection_health.delete().where(connection_health.c.connection_id == found.id)
            )
            conn.execute(connections.delete().where(connections.c.id == found.id))
            self._audit(conn, actor, "connection.deleted", found, [])

    def set_default(self, connection_id: str, actor: Actor | None = None) -> Connection:
        """Make a connection the default (the one messages without a route go to)."""
        with self._change(actor) as conn:
            found = self._locked(conn, connection_id)
            if found.is_default:
                return found
            if not found.enabled:
                raise ConnectionRefused("default_of_disabled", name=found.name)
            now = time.time()
            conn.execute(
                connections.update()
                .where(connections.c.is_default == sa.true())
                .values(is_default=False, updated_at=now)
            )
            conn.execute(
                connections.update()
                .where(connections.c.id == found.id)
                .values(is_default=True, updated_at=now)
            )
            self._audit(conn, actor, "connection.default_changed", found, ["is_default"])
        return replace(found, is_default=True)

    def write_default(
        self,
        conn: Db,
        module: str,
        settings: Mapping[str, Any],
        rate_limit: float,
        concurrency: int,
    ) -> bool:
        """Store the default connection's module, settings and limits in `conn`'s transaction
        (the SMS configuration screen edits it); whether anything changed."""
        stored = conn.execute(
            sa.select(connections).where(connections.c.is_default == sa.true())
        ).first()
        wanted = Connection(
            id=DEFAULT_ID,
            name=DEFAULT_ID,
            module=module,
            settings=dict(settings),
            rate_limit=rate_limit,
            concurrency=concurrency,
            is_default=True,
        )
        now = time.time()
        if stored is None:
            conn.execute(
                connections.insert().values(
                    id=DEFAULT_ID,
                    **self._values(wanted),
                    is_default=True,
                    version=1,
                    created_at=now,
                )
            )
            conn.execute(
                connection_health.insert().values(
                    connection_id=DEFAULT_ID,
                    state="closed",
                    consecutive_failures=0,
                    updated_at=now,
                )
            )
            return True
        before = self._decode(stored)
        after = replace(
            before,
            module=module,
            settings=dict(settings),
            rate_limit=rate_limit,
            concurrency=concurrency,
        )
        if not _changed_fields(before, after):
            return False
        conn.execute(
            connections.update()
            .where(connections.c.id == before.id)
            .values(**self._values(after), version=before.version + 1)
        )
        return True

    # Helpers

    def _change(self, actor: Actor | None) -> _Change:
        if actor is not None and self.trail is not None:
            _ = self.trail.key  # made on first use, in a transaction of its own: before ours
        return _Change(self)

    def _locked(self, conn: Db, id_or_name: str) -> Connection:
        query = sa.select(connections).where(connections.c.id == id_or_name)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            by_name = sa.func.lower(connections.c.name) == id_or_name.casefold()
            row = conn.execute(sa.select(connections).where(by_name)).first()
        if row is None:
            raise ConnectionNotFound(id_or_name)
        return self._decode(row)

    def _refuse_name_taken(self, conn: Db, connection: Connection) -> None:
        if connection.name.startswith(IMPLICIT_PREFIX):
            raise ConnectionRefused("name_reserved", name=connection.name)
        taken = conn.execute(
            sa.select(connections.c.id).where(
                sa.func.lower(connections.c.name) == connection.name.casefold(),
                connections.c.id != connection.id,
            )
        ).first()
        if taken is not None:
            raise ConnectionRefused("name_taken", name=connection.name)

    def _secret_names(self, module: str) -> frozenset[str]:
        try:
            return secret_fields(self.settings_model_of(module))
        except LookupError:
            return frozenset()

    def _values(self, c: Connection) -> dict[str, Any]:
        secret_names = self._secret_names(c.module)
        plain: dict[str, Any] = {}
        sealed: dict[str, Any] = {}
        for key, value in c.settings.items():
            if key in secret_names or isinstance(value, SecretStr):
                text = value.get_secret_value() if isinstance(value, SecretStr) else value
                sealed[key] = {ENCRYPTED: self.box.encrypt(str(text or ""))}
            else:
                plain[key] = value
        return {
            "name": c.name,
            "module": c.module,
            "settings": json.dumps(plain, sort_keys=True),
            "secrets": json.dumps(sealed, sort_keys=True),
            "rate_limit": float(c.rate_limit),
            "concurrency": int(c.concurrency),
            "failure_threshold": int(c.failure_threshold),
            "cool_down_seconds": float(c.cool_down),
            "enabled": bool(c.enabled),
            "updated_at": time.time(),
        }

    def _decode(self, row: Any) -> Connection:
        settings: dict[str, Any] = dict(json.loads(row.settings or "{}"))
        for key, holder in json.loads(row.secrets or "{}").items():
            settings[key] = SecretStr(self.box.decrypt(holder[ENCRYPTED]))
        return Connection(
            id=row.id,
            name=row.name,
            module=row.module,
            settings=settings,
            rate_limit=float(row.rate_limit),
            concurrency=int(row.concurrency),
            enabled=bool(row.enabled),
            is_default=bool(row.is_default),
            failure_threshold=int(row.failure_threshold),
            cool_down=float(row.cool_down_seconds),
            version=int(row.version),
        )

    def _audit(
        self, conn: Db, actor: Actor | None, action: str, c: Connection, changed: list[str]
    ) -> None:
        if actor is None or self.trail is None:
            return
        details: dict[str, Any] = {"name": c.name, "module": c.module}
        if changed:
            details["fields"] = changed
        self.trail.record(
            conn, actor, action, target_kind="connection", target_id=c.id, details=details
        )


class _Change:
    """A write transaction after which every cache of connections is dropped."""

    def __init__(self, store: ConnectionStore) -> None:
        self.store = store
        self._transaction: Any = None
        self._connection: Any = None

    def __enter__(self) -> Db:
        self._connection = write_transaction(self.store.engine)
        conn: Db = self._connection.__enter__()
        self._transaction = conn.begin()
        self._transaction.__enter__()
        return conn

    def __exit__(self, *exc: Any) -> None:
        try:
            self._transaction.__exit__(*exc)
        finally:
            self._connection.__exit__(*exc)
            self.store.forget()
            if self.store.on_change is not None:
                self.store.on_change()


def _is_kept(value: Any) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value is None or value == "" or value == MASK


def _without_kept_secrets(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if not (isinstance(v, SecretStr) and _is_kept(v))}


def _merged(
    before: Connection, changes: Mapping[str, Any], secret_names: frozenset[str]
) -> Connection:
    """`before` with `changes`; settings are merged field by field within the same module."""
    values = dict(changes)
    if "cool_down" in values:
        values["cool_down"] = float(values["cool_down"])
    if "settings" in values:
        module = values.get("module", before.module)
        base = dict(before.settings) if module == before.module else {}
        merged = {**base, **values["settings"]}
        for name in secret_names:
            if name in merged and _is_kept(merged[name]):
                if name in base and not _is_kept(base[name]):
                    merged[name] = base[name]
                else:
                    merged.pop(name)
        values["settings"] = {
            k: SecretStr(v) if k in secret_names and isinstance(v, str) else v
            for k, v in merged.items()
        }
    return replace(before, **values)


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _changed_fields(before: Connection, after: Connection) -> list[str]:
    """Names of the fields that differ (`settings.<field>` for module fields), never values."""
    changed = [
        name
        for name in sorted(EDITABLE - {"settings"})
        if getattr(before, name) != getattr(after, name)
    ]
    keys = sorted(set(before.settings) | set(after.settings))
    changed += [
        f"settings.{key}"
        for key in keys
        if _plain(before.settings.get(key)) != _plain(after.settings.get(key))
    ]
    return changed
