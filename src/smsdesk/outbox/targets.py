"""Which connections a dispatcher scan serves, and which of them may take messages now.

A scan claims for every stored connection, and for the implicit stand-in `module:<name>` of
every module that can send. Messages written without a connection (before connections existed,
or by a writer that sets none) belong to the default connection when they are of its module,
else to their module's stand-in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smsdesk.domain.connections import Connection, Health, implicit_id, implicit_module
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.outbox.breaker import CLOSED
from smsdesk.outbox.pool import default_of
from smsdesk.providers.registry import all_modules, get_module
from smsdesk.sms_configuration import implicit_connection

# How a connection that cannot take messages (disabled, unknown, its module gone) reads.
UNUSABLE = Health(state="open", consecutive_failures=0, opened_at=None, last_error=None)


@dataclass(frozen=True, slots=True)
class Target:
    """A connection a scan claims for; `unassigned` is the module whose messages without a
    connection it also takes."""

    connection: Connection
    unassigned: str | None = None


def usable(connection: Connection) -> bool:
    return connection.enabled and get_module(connection.module).available


def targets(config: SmsConfiguration, stored: Sequence[Connection]) -> list[Target]:
    """The connections of one scan: the default, the other stored ones, the stand-ins."""
    default = default_of(stored, config)
    found = [Target(default, default.module)]
    found += [Target(c) for c in stored if c.id != default.id and _known_module(c.module)]
    for info in all_modules():
        if info.available:
            unassigned = None if info.name == default.module else info.name
            found.append(Target(implicit_connection(config, info.name), unassigned))
    return found


def _known_module(module: str) -> bool:
    try:
        get_module(module)
    except Exception:
        return False
    return True


def by_id(found: Sequence[Target]) -> dict[str, Connection]:
    return {t.connection.id: t.connection for t in found}


def module_of(connection_id: str, known: Mapping[str, Connection]) -> str:
    """The module a connection id sends through."""
    connection = known.get(connection_id)
    if connection is not None:
        return connection.module
    return implicit_module(connection_id) or connection_id


def owner_of(
    connection_id: str | None, module: str, known: Mapping[str, Connection], default: Connection
) -> Connection:
    """The connection a stored (connection, module) pair belongs to: its connection while
    that is still of the module (a connection may have changed module since), else the
    module's stand-in."""
    if connection_id is not None and connection_id in known:
        if known[connection_id].module == module:
            return known[connection_id]
    elif module == default.module:
        return default
    return known.get(implicit_id(module)) or default


class HealthView(Mapping[str, Health]):
    """The health the failover rules see: unusable or unknown connections read as open."""

    def __init__(self, health: Mapping[str, Health], known: Mapping[str, Connection]) -> None:
        self.health = health
        self.known = known

    def __getitem__(self, key: str) -> Health:
        connection = self.known.get(key)
        if connection is None or not usable(connection):
            return UNUSABLE
        return self.health.get(key, CLOSED)

    def __iter__(self) -> Iterator[str]:
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)


def plan_of(row: Any, connection_id: str) -> list[str]:
    """A message's route plan; a message without one has just its connection."""
    if row.route_plan:
        try:
            plan = json.loads(row.route_plan)
        except ValueError:
            plan = None
        if isinstance(plan, list) and plan:
            return [str(c) for c in plan]
    return [row.connection_id or connection_id]


@dataclass(frozen=True, slots=True)
class Placed:
    """A claimed or waiting row, read as `outbox.failover` reads it."""

    connection_id: str | None
    plan_index: int | None
    attempts: int
    expires_at: float


def placed(row: Any, connection_id: str) -> Placed:
    return Placed(
        row.connection_id or connection_id,
        row.plan_index,
        int(row.attempts or 0),
        float(row.expires_at),
    )
