"""Checking a connection as an administrator submits it, and showing one with secrets masked.

Shared by the API, the Connections screen and `smsdesk connections`. A submitted connection is
checked as a whole and every problem is reported with its path (`name`, `settings.<field>`);
a secret left blank or masked keeps its stored value, as in the SMS configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError

from smsdesk.domain.connections import Connection
from smsdesk.domain.settings import (
    MASK,
    ConfigurationInvalid,
    FieldError,
    secret_fields,
    validation_errors,
)
from smsdesk.outbox.dispatcher import callback_url, connection_callback_url
from smsdesk.providers.registry import UnknownModule, get_module
from smsdesk.sms_configuration import merge_secrets

LIMIT_FIELDS = ("rate_limit", "concurrency", "enabled", "failure_threshold", "cool_down")


class ConnectionFields(BaseModel):
    """A connection's own fields (its module's fields are checked by the module's model)."""

    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=60, title="Name")
    module: str = Field(min_length=1, max_length=40, title="Module")
    rate_limit: float = Field(0.0, ge=0, le=100_000, title="Rate limit")
    concurrency: int = Field(4, ge=1, le=256, title="Concurrency")
    enabled: bool = Field(True, title="On")
    failure_threshold: int = Field(5, ge=1, le=1000, title="Failures before the circuit opens")
    cool_down: float = Field(60.0, ge=1, le=86_400, title="Seconds before a probe")


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def check_connection(submitted: Mapping[str, Any], stored: Connection | None) -> Connection:
    """The connection `submitted` describes (a change of `stored`, or a new one); raises
    ConfigurationInvalid with every problem, by path."""
    errors: list[FieldError] = []
    unknown = set(submitted) - set(ConnectionFields.model_fields) - {"settings", "id"}
    errors += [FieldError(name, "Not a field of a connection.") for name in sorted(unknown)]
    base: dict[str, Any] = {}
    if stored is not None:
        base = {name: getattr(stored, name) for name in ("name", "module", *LIMIT_FIELDS)}
    data = {**base, **{k: v for k, v in submitted.items() if k in ConnectionFields.model_fields}}
    if isinstance(data.get("name"), str):
        data["name"] = data["name"].strip()
    fields: ConnectionFields | None = None
    try:
        fields = ConnectionFields.model_validate(data)
    except ValidationError as exc:
        errors += validation_errors(exc)
    module = str(data.get("module") or "")
    settings: dict[str, Any] = {}
    try:
        model = get_module(module).settings_model
    except UnknownModule as exc:
        if not any(e.field == "module" for e in errors):
            errors.append(FieldError("module", str(exc)))
        model = None
    if model is not None:
        kept = dict(stored.settings) if stored is not None and stored.module == module else {}
        typed = submitted.get("settings") or {}
        if not isinstance(typed, Mapping):
            errors.append(FieldError("settings", "Give the module's fields as a mapping."))
            typed = {}
        merged = merge_secrets(model, {**{k: _plain(v) for k, v in kept.items()}, **typed}, kept)
        try:
            settings = model.model_validate(merged).model_dump()
        except ValidationError as exc:
            errors += validation_errors(exc, prefix="settings.")
    if errors or fields is None:
        raise ConfigurationInvalid(errors)
    made = Connection(
        id=stored.id if stored is not None else "",
        name=fields.name,
        module=fields.module,
        settings=settings,
        rate_limit=fields.rate_limit,
        concurrency=fields.concurrency,
        enabled=fields.enabled,
        is_default=stored.is_default if stored is not None else False,
        failure_threshold=fields.failure_threshold,
        cool_down=fields.cool_down,
        version=stored.version if stored is not None else 1,
    )
    return made if stored is None else replace(made, id=stored.id)


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
    try:
        secrets = secret_fields(get_module(connection.module).settings_model)
    except UnknownModule:
        secrets = frozenset()
    shown: dict[str, Any] = {}
    for key, value in connection.settings.items():
        if key in secrets or isinstance(value, SecretStr):
            shown[key] = MASK if _plain(value) else ""
        else:
            shown[key] = value
    return shown


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
