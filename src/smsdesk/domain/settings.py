"""The SMS configuration: general fields, each module's own settings, plugin configuration.

The configuration is one document. `module_settings` holds every module's fields (so switching
module and back loses nothing); `plugin_configuration` holds the original products' `key = value`
lines, whose values are applied on top of the chosen module's fields when the document is saved.
Secret values (passwords, tokens) are `SecretStr` and are replaced by `MASK` whenever the
document is shown; a saved `MASK` or blank secret keeps the stored value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError, field_validator

from smsdesk.domain.email_settings import EmailSettings
from smsdesk.domain.phone import parse_country_code
from smsdesk.domain.retention_settings import RetentionSettings
from smsdesk.domain.routing import RoutingTable
from smsdesk.domain.sender import validate_sender
from smsdesk.domain.sms import ModuleSettings
from smsdesk.domain.spend_settings import SpendSettings
from smsdesk.domain.webhook_settings import WebhookSettings

MASK = "********"
_LINE = re.compile(r"^\s*([^=\s]+)\s*=\s*(.*?)\s*$")


class ModuleLimits(BaseModel):
    """How fast the dispatcher may send through a module."""

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


REQUEST_PRIORITIES = ("low", "normal", "high", "urgent")

# Whole-message keywords (case and surrounding punctuation ignored), per customer language.
DEFAULT_OPT_OUT_KEYWORDS: dict[str, list[str]] = {
    "en": ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"],
    "nl": ["STOP", "AFMELDEN", "UITSCHRIJVEN"],
    "no": ["STOPP", "STOP", "AVMELD", "AVSLUTT"],
    "sv": ["STOPP", "STOP", "AVSLUTA", "AVREGISTRERA"],
    "da": ["STOP", "STOPP", "AFMELD", "AFMELDING"],
    "de": ["STOP", "STOPP", "ABMELDEN", "ABBESTELLEN"],
}
DEFAULT_OPT_IN_KEYWORDS: dict[str, list[str]] = {
    "en": ["START", "UNSTOP", "SUBSCRIBE"],
    "nl": ["START", "AANMELDEN"],
    "no": ["START", "PÅMELD"],
    "sv": ["START", "BÖRJA"],
    "da": ["START", "TILMELD"],
    "de": ["START", "ANMELDEN"],
}


class InboundSettings(BaseModel):
    """How inbound SMS become requests: the SMS mailbox, threading and opt-out keywords."""

    model_config = {"extra": "forbid"}

    sms_endpoint: str = Field(
        "",
        max_length=20,
        title="SMS endpoint",
        description="Code an inbound SMS starts with to be for this installation; "
        "empty accepts every SMS. A module with its own SMS endpoint uses that one.",
    )
    category: str = Field(
        "SMS",
        min_length=1,
        max_length=100,
        title="Category",
        description="Category of requests created from SMS.",
    )
    priority: str = Field(
        "normal",
        title="Priority",
        description="Priority of requests created from SMS: low, normal, high or urgent.",
    )
    language: str = Field(
        "en",
        min_length=2,
        max_length=10,
        title="Customer language",
        description="Language of customers created from SMS (e.g. en, nl).",
    )
    conversation_days: int = Field(
        7,
        ge=0,
        le=365,
        title="Conversation window (days)",
        description="An SMS joins the customer's open request if it was active this recently, "
        "or answers an SMS sent from a request this recently.",
    )
    agents_triage: bool = Field(
        True,
        title="Agents handle unrecognised SMS",
        description="Agents (not only administrators) may assign unrecognised SMS to requests.",
    )
    opt_out_keywords: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_OPT_OUT_KEYWORDS.items()},
        title="Opt-out keywords",
        description="Per language: an SMS consisting of one of these words opts the number out.",
    )
    opt_in_keywords: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_OPT_IN_KEYWORDS.items()},
        title="Opt-in keywords",
        description="Per language: an SMS consisting of one of these words opts the number in.",
    )
    opt_out_confirmation: str = Field(
        "",
        max_length=480,
        title="Opt-out confirmation",
        description="Sent after an opt-out; empty sends nothing.",
    )
    opt_in_confirmation: str = Field(
        "",
        max_length=480,
        title="Opt-in confirmation",
        description="Sent after an opt-in; empty sends nothing.",
    )

    @field_validator("sms_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"[^\s]+", value):
            raise ValueError("The SMS endpoint is one word without spaces, e.g. HELP.")
        return value

    @field_validator("priority")
    @classmethod
    def _priority(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in REQUEST_PRIORITIES:
            raise ValueError(f"Use one of: {', '.join(REQUEST_PRIORITIES)}.")
        return value

    @field_validator("opt_out_keywords", "opt_in_keywords")
    @classmethod
    def _keywords(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        cleaned: dict[str, list[str]] = {}
        for language, words in value.items():
            upper = [w.strip().upper() for w in words if w.strip()]
            if any(" " in w for w in upper):
                raise ValueError(f"Keywords for '{language}' must be single words.")
            cleaned[language.strip().lower()] = upper
        return cleaned

    def keyword_sets(self) -> tuple[frozenset[str], frozenset[str]]:
        """Every opt-out and every opt-in word, whatever the language."""
        out = frozenset(w for words in self.opt_out_keywords.values() for w in words)
        into = frozenset(w for words in self.opt_in_keywords.values() for w in words)
        return out, into - out


class SmsConfiguration(BaseModel):
    """Everything the administrator sets on the SMS configuration screen."""

    model_config = {"extra": "forbid"}

    module: str = Field("simulator", title="Module")
    default_country_code: str = Field(
        "",
        title="Default country code",
        description="Added to numbers without a country code, e.g. +31.",
    )
    sender: str = Field(
        "smsdesk",
        title="Sender",
        description="Text of up to 11 characters or a number of up to 15 digits.",
    )
    plugin_configuration: str = Field(
        "",
        title="Plugin configuration",
        description="Settings from your provider, one 'key = value' per line.",
    )
    max_segments: int = Field(
        10,
        ge=1,
        le=255,
        title="Maximum segments",
        description="Longer texts are refused, never truncated.",
    )
    validity_hours: float = Field(
        48.0,
        gt=0,
        le=24 * 14,
        title="Validity (hours)",
        description="How long the outbox keeps trying a message.",
    )
    reconcile_after_minutes: int = Field(
        60,
        ge=0,
        le=7 * 24 * 60,
        title="Ask for missing reports after (minutes)",
        description="A message sent this long ago without a final delivery report is looked "
        "up at the provider, for modules that can be asked; 0 turns this off.",
    )
    inbound: InboundSettings = Field(default_factory=InboundSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    spend: SpendSettings = Field(default_factory=SpendSettings)
    module_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    limits: dict[str, ModuleLimits] = Field(default_factory=dict)
    # The routes and connections, attached by the configuration store when it loads the
    # document (`store.routes.attach_routing`); None for a configuration made in memory.
    _routing: RoutingTable | None = PrivateAttr(None)

    @property
    def routing(self) -> RoutingTable | None:
        # Read from pydantic's private dict: `self._routing` takes a slow path (~5 us), and
        # accepting a message asks for this every time.
        private = self.__pydantic_private__
        return private.get("_routing") if private else None

    @field_validator("default_country_code")
    @classmethod
    def _country_code(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return ""
        return f"+{parse_country_code(value)}"

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return validate_sender(value).value

    def limits_for(self, module: str) -> ModuleLimits:
        return self.limits.get(module, ModuleLimits())


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field, ready to be shown beside it."""

    field: str
    message: str


class ConfigurationInvalid(ValueError):
    """A configuration that cannot be saved, with every problem found."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def parse_plugin_configuration(text: str) -> tuple[dict[str, str], list[FieldError]]:
    """Read `key = value` lines (blank lines and `#` comments allowed); report bad lines."""
    values: dict[str, str] = {}
    errors: list[FieldError] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            errors.append(
                FieldError("plugin_configuration", f"Line {number}: write it as 'key = value'.")
            )
            continue
        key, value = match.groups()
        if key.startswith("[") or value.startswith("["):
            errors.append(
                FieldError(
                    "plugin_configuration",
                    f"Line {number}: leave out the [ ] placeholder brackets.",
                )
            )
            continue
        values[key] = value
    return values, errors


def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names of a settings model's fields that hold secrets."""
    return frozenset(
        name for name, info in model.model_fields.items() if info.annotation is SecretStr
    )


def apply_plugin_keys(
    model: type[ModuleSettings],
    module: str,
    values: Mapping[str, str],
    known_elsewhere: Mapping[str, str],
) -> tuple[dict[str, str], list[FieldError]]:
    """Map plugin keys to the module's field names; unknown or foreign keys are errors."""
    fields: dict[str, str] = {}
    errors: list[FieldError] = []
    for key, value in values.items():
        if key in model.plugin_keys:
            fields[model.plugin_keys[key]] = value
        elif key in known_elsewhere:
            errors.append(
                FieldError(
                    "plugin_configuration",
                    f"'{key}' belongs to module {known_elsewhere[key]}, not {module}.",
                )
            )
        else:
            known = ", ".join(sorted(model.plugin_keys)) or "none"
            errors.append(
                FieldError(
                    "plugin_configuration",
                    f"'{key}' is not a setting of module {module}. Its keys are: {known}.",
                )
            )
    return fields, errors


def validation_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Turn pydantic's errors into one message per field, in plain words."""
    errors = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "value"
        message = str(error["msg"]).removeprefix("Value error, ")
        errors.append(FieldError(f"{prefix}{name}", message))
    return errors
