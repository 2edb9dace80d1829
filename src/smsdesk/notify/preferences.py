"""A user's own contact details and notification choices, checked before they are stored.

Used by the My settings page and `smsdesk users set`: an e-mail address, an own mobile number
(normalised as the outbox normalises numbers), an IANA time zone, and per event the channels
("email", "sms") the user wants to hear of it by.
"""

from __future__ import annotations

import functools
import json
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from smsdesk.domain.email_settings import is_email_address
from smsdesk.domain.errors import DomainError
from smsdesk.domain.phone import normalise_msisdn
from smsdesk.domain.settings import FieldError
from smsdesk.notify.messages import CHANNELS, EVENTS

# The events as users read them, in the order they are shown.
EVENT_TITLES = {
    "request.new_in_group": "A new request in one of my groups",
    "request.assigned": "A request is assigned to me",
    "request.customer_answered": "The customer answered my request",
}
CHANNEL_TITLES = {"email": "E-mail", "sms": "SMS"}


class ContactInvalid(ValueError):
    """Contact details that cannot be stored, with every problem by field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


@functools.cache
def time_zones() -> tuple[str, ...]:
    """Every IANA time zone name this system knows, sorted (the legacy aliases left out)."""
    legacy = ("Etc/", "SystemV/", "US/", "posix/", "right/")
    named = (z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(legacy))
    return (*sorted(named), "UTC")


@dataclass(frozen=True, slots=True)
class Contact:
    """What is stored: None clears a value."""

    email: str | None
    phone: str | None
    time_zone: str | None
    notify: dict[str, list[str]]

    def values(self) -> dict[str, str | None]:
        return {
            "email": self.email,
            "phone": self.phone,
            "time_zone": self.time_zone,
            "notify": json.dumps(self.notify, sort_keys=True),
        }


def parse_choices(items: Sequence[str]) -> dict[str, list[str]]:
    """`event=channel,channel` items (e.g. from the command line) as choices; `event=` or
    `event=none` chooses nothing for that event."""
    choices: dict[str, list[str]] = {}
    errors: list[FieldError] = []
    for item in items:
        event, sep, channels = item.partition("=")
        event = event.strip()
        wanted = [c.strip().lower() for c in channels.split(",") if c.strip()]
        if not sep or event not in EVENTS:
            errors.append(
                FieldError(
                    "notify", f"Write each choice as event=channels; events: {', '.join(EVENTS)}."
                )
            )
            continue
        if wanted == ["none"]:
            wanted = []
        unknown = [c for c in wanted if c not in CHANNELS]
        if unknown:
            errors.append(
                FieldError("notify", f"Channels are email and sms, not {', '.join(unknown)}.")
            )
            continue
        choices[event] = [c for c in CHANNELS if c in wanted]
    if errors:
        raise ContactInvalid(errors)
    return choices


def check_contact(
    *,
    email: str | None,
    phone: str | None,
    time_zone: str | None,
    notify: Mapping[str, Sequence[str]],
    default_country_code: str,
) -> Contact:
    """The details as stored, or ContactInvalid naming each field that is wrong."""
    errors: list[FieldError] = []
    email = (email or "").strip() or None
    if email is not None and not is_email_address(email):
        errors.append(FieldError("email", "Enter an e-mail address such as anna@example.org."))
    number: str | None = None
    if (phone or "").strip():
        try:
            number = normalise_msisdn(str(phone), default_country_code or None)
        except DomainError as exc:
            errors.append(FieldError("phone", exc.message))
    time_zone = (time_zone or "").strip() or None
    if time_zone is not None and time_zone not in time_zones():
        errors.append(
            FieldError("time_zone", "Choose a time zone from the list, e.g. Europe/Amsterdam.")
        )
    cleaned = {event: [c for c in CHANNELS if c in notify.get(event, ())] for event in EVENTS}
    cleaned = {event: channels for event, channels in cleaned.items() if channels}
    if any("email" in c for c in cleaned.values()) and email is None and not errors:
        errors.append(FieldError("email", "Enter your e-mail address to be notified by e-mail."))
    if any("sms" in c for c in cleaned.values()) and number is None and not errors:
        errors.append(FieldError("phone", "Enter your mobile number to be notified by SMS."))
    if errors:
        raise ContactInvalid(errors)
    return Contact(email, number, time_zone, cleaned)
