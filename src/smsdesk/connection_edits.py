"""Connections as the API, the Connections screen and `smsdesk connections` take and show them.

A submitted connection is checked as a whole by `sms_configuration.validate_connection`, every
problem reported with its path (`name`, `settings.<field>`); a secret left blank or masked keeps
its stored value. Shown, a connection never carries a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smsdesk.domain.connections import Connection
from smsdesk.domain.settings import ConfigurationInvalid, FieldError
from smsdesk.outbox.dispatcher import callback_url, connection_callback_url
from smsdesk.sms_configuration import masked_connection, validate_connection

LIMIT_FIELDS = ("rate_limit", "concurrency", "enabled", "failure_threshold", "cool_down")


def check_connection(submitted: Mapping[str, Any], stored: Connection | None) -> Connection:
    """The connection `submitted` describes (a change of `stored`, or a new one); raises
    ConfigurationInvalid with every problem, by path (`settings.<field>` and so on)."""
    unknown = set(submitted) - {"id", "name", "module", "settings", *LIMIT_FIELDS}
    if unknown:
        raise ConfigurationInvalid(
            [FieldError(name, "Not a field of a connection.") for name in sorted(unknown)]
        )
    return validate_connection(submitted, stored)


def changes_of(checked: Connection) -> dict[str, Any]:
    """The editable fields of a checked connection, for `ConnectionStore.update`."""
    return {
        "name": checked.name,
        "module": checked.module,
        "settings": dict(checked.settings),
        **{name: getattr(checked, name) for name in LIMIT_FIELDS},
    }


def masked_settings(connection: Connection) -> dict[str, Any]:
    """A connection's module fields as they may be shown: each secret as MASK, or '' if unset."""
    settings: dict[str, Any] = masked_connection(connection)["settings"]
    return settings


def shown(connection: Connection) -> dict[str, Any]:
    """A connection as the API, the CLI and TOML show it: never a secret."""
    return {
        "id": connection.id,
        "name": connection.name,
        "module": connection.module,
        "is_default": connection.is_default,
        "enabled": connection.enabled,
        "rate_limit": connection.rate_limit,
        "concurrency": connection.concurrency,
        "failure_threshold": connection.failure_threshold,
        "cool_down": connection.cool_down,
        "version": connection.version,
        "settings": masked_settings(connection),
    }


def callback_urls(public_url: str, secret: str, connection: Connection) -> dict[str, str]:
    """Where the provider must send a connection's reports and inbound SMS. The default
    connection keeps its module's URLs, so those already set at providers stay valid."""
    kinds = ("status", "inbound")
    if connection.is_default or connection.implicit:
        return {k: callback_url(public_url, connection.module, k, secret) for k in kinds}
    return {k: connection_callback_url(public_url, connection.id, k, secret) for k in kinds}
