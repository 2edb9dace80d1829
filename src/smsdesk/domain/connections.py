"""Connections: provider accounts, each a module with its own settings, limits and breaker.

One connection is the default; routes name others. A message sent with a `module=` override
whose module has no connection goes through an *implicit* connection, `module:<name>`, built
from the settings parked for that module in the SMS configuration document (never stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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
