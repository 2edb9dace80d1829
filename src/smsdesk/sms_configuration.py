"""Validating, merging and masking the SMS configuration submitted by an administrator.

A submitted document is checked as a whole and every problem is reported per field; nothing
is stored unless all of it is valid. Secrets left blank or masked keep their stored value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from smsdesk.domain.connections import (
    IMPLICIT_PREFIX,
    Connection,
    ConnectionLimits,
    implicit_id,
)
from smsdesk.domain.email_settings import SENDER_NEEDED
from smsdesk.domain.errors import DomainError
from smsdesk.domain.settings import (
    MASK,
    ConfigurationInvalid,
    FieldError,
    SmsConfiguration,
    apply_plugin_keys,
    parse_plugin_configuration,
    secret_fields,
    validation_errors,
)
from smsdesk.domain.sms import ModuleSettings
from smsdesk.providers.registry import UnknownModule, all_modules, get_module


def _plugin_key_owners() -> dict[str, str]:
    """Each plugin key → the modules that accept it ("intelecom or original_intelecom")."""
    owners: dict[str, list[str]] = {}
    for m in all_modules():
        for key in m.settings_model.plugin_keys:
            owners.setdefault(key, []).append(m.name)
    return {key: " or ".join(names) for key, names in owners.items()}


def _is_kept(value: Any) -> bool:
    """A secret submitted blank or as the mask means 'keep what is stored'."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value is None or value == "" or value == MASK


def merge_secrets(
    model: type[BaseModel], submitted: Mapping[str, Any], stored: Mapping[str, Any]
) -> dict[str, Any]:
    merged = dict(submitted)
    for name in secret_fields(model):
        if _is_kept(merged.get(name)):
            if name in stored:
                merged[name] = stored[name]
            else:
                merged.pop(name, None)
    return merged


def module_settings(config: SmsConfiguration, module: str) -> ModuleSettings:
    """The validated settings of one module as stored in the configuration."""
    model = get_module(module).settings_model
    return model.model_validate(config.module_settings.get(module, {}))


def validate_configuration(
    submitted: Mapping[str, Any], stored: SmsConfiguration | None
) -> SmsConfiguration:
    """Check a submitted configuration against the stored one; raise ConfigurationInvalid."""
    stored = stored or SmsConfiguration()
    data = {**stored.model_dump(exclude={"module_settings"}), **submitted}
    for section in ("inbound", "retention", "email"):
        if isinstance(submitted.get(section), Mapping):
            # These sections are merged field by field, like the general ones.
            data[section] = {**getattr(stored, section).model_dump(), **submitted[section]}
    if isinstance(data.get("email"), Mapping):
        data["email"] = {**data["email"]}
        if _is_kept(data["email"].get("password")):
            data["email"]["password"] = stored.email.password
    errors: list[FieldError] = []
    try:
        info = get_module(str(data.get("module", "")))
    except UnknownModule as exc:
        errors.append(FieldError("module", str(exc)))
        info = None
    modules: dict[str, dict[str, Any]] = {k: dict(v) for k, v in stored.module_settings.items()}
    for name, fields in (submitted.get("module_settings") or {}).items():
        try:
            model = get_module(name).settings_model
        except UnknownModule as exc:
            errors.append(FieldError(f"module_settings.{name}", str(exc)))
            continue
        modules[name] = merge_secrets(
            model, {**modules.get(name, {}), **fields}, stored.module_settings.get(name, {})
        )
    plugin_text = str(data.get("plugin_configuration") or "")
    if info is not None:
        plugin_text = _apply_plugin_configuration(info.name, plugin_text, modules, stored, errors)
    data["plugin_configuration"] = plugin_text
    data["module_settings"] = {}
    config = _validate_general(data, errors)
    if config is not None and config.email.host and not config.email.sender:
        errors.append(FieldError("email.sender", SENDER_NEEDED))
    validated = _validate_modules(modules, errors)
    if errors or config is None:
        raise ConfigurationInvalid(errors)
    return config.model_copy(update={"module_settings": validated})


def _apply_plugin_configuration(
    module: str,
    text: str,
    modules: dict[str, dict[str, Any]],
    stored: SmsConfiguration,
    errors: list[FieldError],
) -> str:
    """Move plugin-configuration values into the module's fields; keep the text masked."""
    values, line_errors = parse_plugin_configuration(text)
    errors.extend(line_errors)
    model = get_module(module).settings_model
    fields, key_errors = apply_plugin_keys(model, module, values, _plugin_key_owners())
    errors.extend(key_errors)
    secrets = secret_fields(model)
    target = modules.setdefault(module, {})
    for name, value in fields.items():
        if name in secrets and _is_kept(value):
            continue
        target[name] = value
    masked_keys = {key for key, name in model.plugin_keys.items() if name in secrets}
    return mask_plugin_text(text, masked_keys)


def mask_plugin_text(text: str, secret_keys: set[str]) -> str:
    lines = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in secret_keys and value.strip():
            line = f"{key.rstrip()} = {MASK}"
        lines.append(line)
    return "\n".join(lines)


def _validate_general(data: dict[str, Any], errors: list[FieldError]) -> SmsConfiguration | None:
    try:
        return SmsConfiguration.model_validate(data)
    except ValidationError as exc:
        errors.extend(validation_errors(exc))
    except DomainError as exc:
        errors.append(FieldError(exc.field, exc.message))
    return None


def _validate_modules(
    modules: Mapping[str, Mapping[str, Any]], errors: list[FieldError]
) -> dict[str, dict[str, Any]]:
    validated: dict[str, dict[str, Any]] = {}
    for name, fields in modules.items():
        model = get_module(name).settings_model
        try:
            instance = model.model_validate(fields)
        except ValidationError as exc:
            errors.extend(validation_errors(exc, prefix=f"module_settings.{name}."))
            continue
        validated[name] = instance.model_dump(exclude_defaults=False)
    return validated


def masked(config: SmsConfiguration) -> dict[str, Any]:
    """The configuration as it may be shown: every secret replaced by MASK (or '' if unset)."""
    shown = config.model_dump(mode="json", exclude={"module_settings"})
    shown["module_settings"] = {}
    for name, fields in config.module_settings.items():
        model = get_module(name).settings_model
        secrets = secret_fields(model)
        out = {}
        for key, value in fields.items():
            if key in secrets:
                plain = value.get_secret_value() if isinstance(value, SecretStr) else value
                out[key] = MASK if plain else ""
            else:
                out[key] = value
        shown["module_settings"][name] = out
    shown["email"]["password"] = MASK if config.email.password.get_secret_value() else ""
    return shown


# Connections


def connection_settings(connection: Connection) -> ModuleSettings:
    """The validated module settings of a connection."""
    model = get_module(connection.module).settings_model
    return model.model_validate(dict(connection.settings))


def implicit_connection(config: SmsConfiguration, module: str) -> Connection:
    """The stand-in connection of a module without one: its parked fields and limits."""
    limits = config.limits_for(module)
    return Connection(
        id=implicit_id(module),
        name=module,
        module=module,
        settings=dict(config.module_settings.get(module, {})),
        rate_limit=limits.rate_limit,
        concurrency=limits.concurrency,
        implicit=True,
    )


def validate_connection(submitted: Mapping[str, Any], stored: Connection | None) -> Connection:
    """A connection from submitted fields over the stored ones; raise ConfigurationInvalid.

    `settings` is merged field by field when the module stays the same (a secret left blank or
    as the mask keeps its stored value); a new module starts from its own defaults. Problems
    are reported as `name`, `module`, `settings.<field>`, `rate_limit` and so on.
    """
    errors: list[FieldError] = []
    name = str(submitted.get("name", stored.name if stored else "")).strip()
    if not name:
        errors.append(FieldError("name", "Give the connection a name."))
    elif len(name) > 60:
        errors.append(FieldError("name", "A name has at most 60 characters."))
    elif name.startswith(IMPLICIT_PREFIX):
        errors.append(FieldError("name", "A name cannot start with module:, which names a module."))
    module = str(submitted.get("module", stored.module if stored else "")).strip()
    settings: dict[str, Any] = {}
    try:
        model = get_module(module).settings_model
    except UnknownModule as exc:
        errors.append(FieldError("module", str(exc)))
    else:
        settings = _connection_fields(model, submitted, stored, module, errors)
    limits = _connection_limits(submitted, stored, errors)
    enabled = submitted.get("enabled", stored.enabled if stored else True)
    if not isinstance(enabled, bool):
        errors.append(FieldError("enabled", "Say true or false."))
    if errors or limits is None:
        raise ConfigurationInvalid(errors)
    base = stored or Connection(id="", name=name, module=module)
    return replace(
        base,
        name=name,
        module=module,
        settings=settings,
        rate_limit=limits.rate_limit,
        concurrency=limits.concurrency,
        failure_threshold=limits.failure_threshold,
        cool_down=limits.cool_down,
        enabled=bool(enabled),
    )


def _connection_fields(
    model: type[ModuleSettings],
    submitted: Mapping[str, Any],
    stored: Connection | None,
    module: str,
    errors: list[FieldError],
) -> dict[str, Any]:
    kept = dict(stored.settings) if stored is not None and stored.module == module else {}
    fields = submitted.get("settings") or {}
    if not isinstance(fields, Mapping):
        errors.append(FieldError("settings", "Give the module's fields as names and values."))
        return {}
    merged = merge_secrets(model, {**kept, **fields}, kept)
    try:
        return model.model_validate(merged).model_dump()
    except ValidationError as exc:
        errors.extend(validation_errors(exc, prefix="settings."))
    return {}


def _connection_limits(
    submitted: Mapping[str, Any], stored: Connection | None, errors: list[FieldError]
) -> ConnectionLimits | None:
    current = ConnectionLimits() if stored is None else ConnectionLimits.of(stored)
    values = {
        **current.model_dump(),
        **{k: submitted[k] for k in ConnectionLimits.model_fields if k in submitted},
    }
    try:
        return ConnectionLimits.model_validate(values)
    except ValidationError as exc:
        errors.extend(validation_errors(exc))
    return None


def masked_connection(connection: Connection) -> dict[str, Any]:
    """A connection as it may be shown: every secret replaced by MASK (or '' if unset)."""
    try:
        secrets = secret_fields(get_module(connection.module).settings_model)
    except UnknownModule:
        secrets = frozenset()
    shown: dict[str, Any] = {}
    for key, value in connection.settings.items():
        if key in secrets or isinstance(value, SecretStr):
            plain = value.get_secret_value() if isinstance(value, SecretStr) else value
            shown[key] = MASK if plain else ""
        else:
            shown[key] = value
    return {
        "id": connection.id,
        "name": connection.name,
        "module": connection.module,
        "settings": shown,
        "rate_limit": connection.rate_limit,
        "concurrency": connection.concurrency,
        "failure_threshold": connection.failure_threshold,
        "cool_down": connection.cool_down,
        "enabled": connection.enabled,
        "is_default": connection.is_default,
        "implicit": connection.implicit,
        "version": connection.version,
    }
