"""Connections: provider accounts, each a module with its own settings, limits and breaker.

One connection is the default; routes name others. A message sent with a `module=` override
whose module has no connection goes through an *implicit* connection, `module:<name>`, built
from the settings parked for that module in the SMS configuration document (never stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from smsdesk.domain.errors import DomainError

DEFAULT_ID = "default"
IMPLICIT_PREFIX = "module:"

HealthState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class Connection:
    """One provider account: its module, its settings (secrets as `SecretStr`) and limits."""

    id: str
    name: str
    module: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    rate_limit: float = 0.0
    concurrency: int = 4
    enabled: bool = True
    is_default: bool = False
    failure_threshold: int = 5
    cool_down: float = 60.0
    version: int = 1
    implicit: bool = False


class ConnectionLimits(BaseModel):
    """How fast a connection may send, and when its circuit breaker opens and closes."""

    model_config = {"extra": "forbid"}

    rate_limit: float = Field(
        0.0,
        ge=0,
        le=100_000,
        title="Rate limit",
        description="Messages per second; 0 means no limit.",
    )
    concurrency: int = Field(
        4,
        ge=1,
        le=256,
        title="Concurrency",
        description="Requests to the provider at the same time.",
    )
    failure_threshold: int = Field(
        5,
        ge=1,
        le=1000,
        title="Failures before pausing",
        description="After this many failures in a row the connection is paused and "
        "messages go to the next connection of their route.",
    )
    cool_down: float = Field(
        60.0,
        ge=1,
        le=86_400,
        title="Pause (seconds)",
        description="How long a paused connection waits before one message tries it again.",
    )

    @classmethod
    def of(cls, connection: Connection) -> ConnectionLimits:
        return cls(
            rate_limit=connection.rate_limit,
            concurrency=connection.concurrency,
            failure_threshold=connection.failure_threshold,
            cool_down=connection.cool_down,
        )


@dataclass(frozen=True, slots=True)
class Health:
    """A connection's circuit breaker as every process sees it."""

    state: HealthState = "closed"
    consecutive_failures: int = 0
    opened_at: float | None = None
    last_error: str | None = None


def implicit_id(module: str) -> str:
    """The id of the stand-in connection for a module that has no connection of its own."""
    return f"{IMPLICIT_PREFIX}{module}"


def implicit_module(connection_id: str) -> str | None:
    """The module of an implicit connection id, or None for a stored connection's id."""
    if connection_id.startswith(IMPLICIT_PREFIX):
        return connection_id[len(IMPLICIT_PREFIX) :]
    return None


# Why a change to the connections is refused, by rule (msgids: the web answers translate them).
REFUSALS: dict[str, str] = {
    "delete_default": "{name} is the default connection; make another connection the default "
    "first.",
    "delete_routed": "{name} is used by route {route}; take it out of the route first.",
    "delete_waiting": "{count} message(s) still wait to be sent through {name}; delete it once "
    "they are sent, or cancel them.",
    "default_disabled": "{name} is the default connection and cannot be turned off; make "
    "another connection the default first.",
    "default_of_disabled": "{name} is turned off; turn it on before making it the default.",
    "name_taken": "There is a connection named {name} already; choose another name.",
    "name_reserved": "A connection name cannot start with module:, which names a module "
    "without a connection.",
}
_FIELDS = {"name_taken": "name", "name_reserved": "name", "default_disabled": "enabled"}


class ConnectionRefused(DomainError):
    """A change to the connections that would break sending or clash; `rule` says which."""

    field = "connection"

    def __init__(self, rule: str, **params: Any) -> None:
        self.rule = rule
        self.msgid = REFUSALS[rule]
        self.params = params
        super().__init__(self.msgid.format(**params), field=_FIELDS.get(rule))
