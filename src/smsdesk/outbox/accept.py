"""Accepting an SMS: validate and normalise it into a row ready to be committed.

Everything a caller can get wrong is checked here, before anything is stored, and reported
with the field it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smsdesk.configuration import module_settings
from smsdesk.domain.encoding import check_text
from smsdesk.domain.errors import DomainError
from smsdesk.domain.ids import new_id
from smsdesk.domain.message import Status
from smsdesk.domain.phone import normalise_msisdn
from smsdesk.domain.sender import validate_sender
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.providers.registry import ModuleInfo, UnknownModule, get_module


@dataclass(frozen=True, slots=True)
class NewMessage:
    """An SMS as a caller asks for it; optional fields fall back to the SMS configuration."""

    to: str
    text: str
    sender: str | None = None
    priority: int | None = None
    module: str | None = None
    scheduled_at: float | None = None
    validity_hours: float | None = None
    reference: str | None = None


def resolve_module(name: str | None, config: SmsConfiguration) -> ModuleInfo:
    """The module a message goes through: the one asked for, else the configured one."""
    try:
        info = get_module(name or config.module)
    except UnknownModule as exc:
        raise DomainError(str(exc), field="module") from None
    if not info.available:
        raise DomainError(
            f"The module {info.title} cannot send in this version of smsdesk; "
            "choose another module in the SMS configuration.",
            field="module",
        )
    return info


def default_priority(config: SmsConfiguration, module: str) -> int:
    """A module's SMS priority setting (Original Intelecom has one), else normal (2)."""
    settings = module_settings(config, module)
    return int(getattr(settings, "sms_priority", 2))


def prepare_message(
    request: NewMessage,
    config: SmsConfiguration,
    now: float,
    *,
    api_key_id: str | None = None,
    is_test: bool = False,
) -> dict[str, Any]:
    """Validate a message and build its database row; raise DomainError naming the field."""
    info = resolve_module(request.module, config)
    priority = (
        request.priority if request.priority is not None else default_priority(config, info.name)
    )
    if priority not in (1, 2, 3):
        raise DomainError(
            f"Priority {priority} does not exist; use 1 (fastest), 2 or 3.", field="priority"
        )
    recipient = normalise_msisdn(request.to, config.default_country_code or None)
    sender = validate_sender(request.sender if request.sender is not None else config.sender)
    text = check_text(request.text, config.max_segments)
    validity = request.validity_hours or config.validity_hours
    if not 0 < validity <= 24 * 14:
        raise DomainError(
            "Validity must be more than 0 and at most 336 hours (14 days).", field="validity_hours"
        )
    start = max(now, request.scheduled_at or now)
    settings = module_settings(config, info.name)
    return {
        "id": new_id(),
        "module": info.name,
        "recipient": recipient,
        "sender": sender.value,
        "body": request.text,
        "encoding": text.encoding.value,
        "segments": text.segments,
        "priority": priority,
        "status": Status.QUEUED.value,
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": start,
        "expires_at": start + validity * 3600,
        "scheduled_at": request.scheduled_at if start > now else None,
        "attempts": 0,
        "reference": request.reference,
        "api_key_id": api_key_id,
        "is_test": is_test,
        "delivery_report": bool(getattr(settings, "delivery_report", True)),
    }
