"""The SMS configuration as an HTML form, built from the settings models themselves.

Every field the models show in their JSON schema becomes an input named by its dotted path
(`module_settings.original_intelecom.sms_priority`), the same path validation errors carry, so
each error lands beside its field. Secrets are never put in a page: the form only says whether
one is set, and a blank secret keeps the stored one.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, SecretStr

from smsdesk.domain.email_settings import EmailSettings
from smsdesk.domain.retention_settings import RetentionSettings
from smsdesk.domain.settings import (
    MASK,
    REQUEST_PRIORITIES,
    InboundSettings,
    SmsConfiguration,
)
from smsdesk.providers.registry import UnknownModule, all_modules, get_module

Kind = Literal["text", "secret", "checkbox", "select", "number", "textarea"]

# General fields of the seed's screen, then the rest of the general settings, in order.
GENERAL_FIELDS = ("module", "default_country_code", "sender", "plugin_configuration")
SENDING_FIELDS = ("max_segments", "validity_hours", "reconcile_after_minutes")
MAILBOX_FIELDS = (
    "sms_endpoint",
    "category",
    "priority",
    "language",
    "conversation_days",
    "agents_triage",
    "opt_out_confirmation",
    "opt_in_confirmation",
)
RETENTION_FIELDS = tuple(RetentionSettings.model_fields)
EMAIL_FIELDS = tuple(EmailSettings.model_fields)
CHECKBOX_OFF = "off"


@dataclass(slots=True)
class FormField:
    name: str  # the dotted path: form name and error key
    title: str  # English; the template translates it
    description: str
    kind: Kind
    value: str = ""
    checked: bool = False
    is_set: bool = False  # secrets: whether one is stored
    choices: list[tuple[str, str]] = field(default_factory=list)  # (value, English label)
    minimum: float | None = None
    maximum: float | None = None
    step: str = "1"
    errors: list[str] = field(default_factory=list)

    @property
    def dom_id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-")


@dataclass(slots=True)
class ModuleSection:
    name: str
    title: str
    description: str
    available: bool
    fields: list[FormField]


def _bounds(info: Any) -> tuple[float | None, float | None]:
    low = high = None
    for item in info.metadata:
        for attribute in ("ge", "gt"):
            if getattr(item, attribute, None) is not None:
                low = float(getattr(item, attribute))
        for attribute in ("le", "lt"):
            if getattr(item, attribute, None) is not None:
                high = float(getattr(item, attribute))
    return low, high


def _choices(annotation: Any) -> list[tuple[str, str]]:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [(str(m.value), str(m.value)) for m in annotation]
    if typing.get_origin(annotation) is Literal:
        return [(str(v), str(v)) for v in typing.get_args(annotation)]
    return []


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def model_fields(
    model: type[BaseModel],
    prefix: str,
    values: Mapping[str, Any],
    only: tuple[str, ...] | None = None,
) -> list[FormField]:
    """The fields of `model` that the screen shows, filled from `values` (stored or typed)."""
    shown = model.model_json_schema().get("properties", {})
    names = only if only is not None else tuple(model.model_fields)
    fields: list[FormField] = []
    for name in names:
        info = model.model_fields[name]
        if name not in shown:
            continue
        annotation = info.annotation
        path = f"{prefix}{name}"
        current = values.get(name, info.get_default(call_default_factory=True))
        form_field = FormField(
            name=path,
            title=info.title or name,
            description=info.description or "",
            kind="text",
        )
        choices = _choices(annotation)
        low, high = _bounds(info)
        if annotation is SecretStr:
            form_field.kind = "secret"
            plain = current.get_secret_value() if isinstance(current, SecretStr) else current
            form_field.is_set = bool(plain)
        elif annotation is bool:
            form_field.kind = "checkbox"
            form_field.checked = current in (True, "true", "on", "1")
        elif choices:
            form_field.kind = "select"
            form_field.choices = choices
            form_field.value = _as_text(current)
        elif annotation is int and low is not None and high is not None and high - low <= 10:
            form_field.kind = "select"
            form_field.choices = [(str(n), str(n)) for n in range(int(low), int(high) + 1)]
            form_field.value = _as_text(current)
        elif annotation in (int, float, int | None, float | None):
            form_field.kind = "number"
            form_field.minimum, form_field.maximum = low, high
            form_field.step = "1" if annotation in (int, int | None) else "any"
            form_field.value = _as_text(current)
        else:
            form_field.value = _as_text(current)
        fields.append(form_field)
    return fields


@dataclass(slots=True)
class SettingsForm:
    general: list[FormField]
    sending: list[FormField]
    mailbox: list[FormField]
    retention: list[FormField]
    email: list[FormField]
    modules: list[ModuleSection]
    selected_module: str
    errors: dict[str, list[str]]
    unplaced_errors: list[str]  # errors of no shown field (kept, never dropped)
    # Modules with an SMS endpoint field of their own: with one of them chosen, the mailbox's
    # SMS endpoint is not shown (one endpoint field on the screen, never two).
    own_endpoint_modules: list[str] = field(default_factory=list)

    def all_fields(self) -> list[FormField]:
        return [
            *self.general,
            *self.sending,
            *self.mailbox,
            *self.retention,
            *self.email,
            *(f for m in self.modules for f in m.fields),
        ]


def build_form(
    shown: Mapping[str, Any], errors: Mapping[str, list[str]] | None = None
) -> SettingsForm:
    """The form for a configuration as `masked()` gives it, or as typed into the form."""
    general = model_fields(SmsConfiguration, "", shown, GENERAL_FIELDS)
    module_field = general[0]
    module_field.kind = "select"
    module_field.choices = [(m.name, m.title) for m in all_modules()]
    module_field.value = str(shown.get("module", "simulator"))
    plugin = next(f for f in general if f.name == "plugin_configuration")
    plugin.kind = "textarea"
    inbound = shown.get("inbound") or {}
    mailbox = model_fields(InboundSettings, "inbound.", inbound, MAILBOX_FIELDS)
    for f in mailbox:
        if f.name == "inbound.priority":
            f.kind = "select"
            f.choices = [(p, p) for p in REQUEST_PRIORITIES]
        if f.name.endswith("_confirmation"):
            f.kind = "textarea"
    module_values = shown.get("module_settings") or {}
    sections = [
        ModuleSection(
            name=m.name,
            title=m.title,
            description=m.description,
            available=m.available,
            fields=model_fields(
                m.settings_model, f"module_settings.{m.name}.", module_values.get(m.name) or {}
            ),
        )
        for m in all_modules()
    ]
    form = SettingsForm(
        general=general,
        sending=model_fields(SmsConfiguration, "", shown, SENDING_FIELDS),
        mailbox=mailbox,
        retention=model_fields(
            RetentionSettings, "retention.", shown.get("retention") or {}, RETENTION_FIELDS
        ),
        email=model_fields(EmailSettings, "email.", shown.get("email") or {}, EMAIL_FIELDS),
        modules=sections,
        selected_module=module_field.value,
        errors=dict(errors or {}),
        unplaced_errors=[],
        own_endpoint_modules=[
            m.name for m in all_modules() if "sms_endpoint" in m.settings_model.model_fields
        ],
    )
    placed: set[str] = set()
    for f in form.all_fields():
        f.errors = list(form.errors.get(f.name, []))
        placed.add(f.name)
    for name, messages in form.errors.items():
        if name not in placed:
            form.unplaced_errors.extend(messages)
    return form


def submitted_configuration(values: Mapping[str, str]) -> dict[str, Any]:
    """The posted form as the document `validate_configuration` takes (and the API's PUT).

    Checkboxes post a hidden 'off' before the box itself, and `values` holds the last value
    of each name; only the chosen module's fields are posted (the others are disabled).
    """
    body: dict[str, Any] = {}
    for name in (*GENERAL_FIELDS, *SENDING_FIELDS):
        if name in values:
            body[name] = values[name]
    inbound = {
        name: values[f"inbound.{name}"] for name in MAILBOX_FIELDS if f"inbound.{name}" in values
    }
    if inbound:
        body["inbound"] = inbound
    retention = {
        name: values[f"retention.{name}"]
        for name in RETENTION_FIELDS
        if f"retention.{name}" in values
    }
    if retention:
        body["retention"] = retention
    email = {name: values[f"email.{name}"] for name in EMAIL_FIELDS if f"email.{name}" in values}
    if email:
        body["email"] = email
    modules: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if not key.startswith("module_settings."):
            continue
        _, module, name = key.split(".", 2)
        modules.setdefault(module, {})[name] = _field_value(module, name, value)
    if modules:
        body["module_settings"] = modules
    return body


def _field_value(module: str, name: str, value: str) -> Any:
    """Form text as the model takes it: checkboxes to booleans, empty optional numbers to None."""
    if value == CHECKBOX_OFF:
        return False
    if value == "on":
        return True
    info = _field_info(module, name)
    if info is not None and value == "" and info.annotation in (int | None, float | None):
        return None
    return value


def typed_view(body: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """What to show after a failed save: the typed values over the stored ones, secrets masked.

    A typed secret is not sent back to the browser; the page asks for it again instead.
    """
    shown = dict(stored)
    for key, value in body.items():
        if key in ("inbound", "retention"):
            shown[key] = {**(stored.get(key) or {}), **value}
        elif key == "email":  # a typed password is not sent back
            kept = {"password": (stored.get("email") or {}).get("password", "")}
            shown[key] = {**(stored.get(key) or {}), **value, **kept}
        elif key == "module_settings":
            merged = dict(stored.get("module_settings") or {})
            for module, fields in value.items():
                current = dict(merged.get(module) or {})
                for name, typed in fields.items():
                    if current.get(name) == MASK or _is_secret(module, name):
                        continue
                    current[name] = typed
                merged[module] = current
            shown["module_settings"] = merged
        else:
            shown[key] = value
    return shown


def typed_secrets(body: Mapping[str, Any]) -> set[str]:
    """Dotted names of the secrets that were typed (not left blank) in a submitted form."""
    typed = set()
    if (body.get("email") or {}).get("password") not in ("", None, MASK):
        typed.add("email.password")
    for module, fields in (body.get("module_settings") or {}).items():
        for name, value in fields.items():
            if _is_secret(module, name) and value not in ("", None, MASK):
                typed.add(f"module_settings.{module}.{name}")
    return typed


def _is_secret(module: str, name: str) -> bool:
    info = _field_info(module, name)
    return info is not None and info.annotation is SecretStr


def _field_info(module: str, name: str) -> Any:
    """A module's field, or None for an unknown module or field (validation reports those)."""
    try:
        return get_module(module).settings_model.model_fields.get(name)
    except UnknownModule:
        return None
