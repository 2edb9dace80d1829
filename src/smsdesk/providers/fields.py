"""Settings fields that modules declare alike: names and codes, secrets, URLs and switches.

A module's settings model is also its part of the configuration screen: each field's title and
description are what the admin reads (and what the Dutch catalogue translates). These helpers
keep one declaration of each kind of field, so a module writes only what is its own: the words.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr

from smsdesk.domain.sms import ModuleSettings

URL_PATTERN = r"^(https?://[^\s]+)?$"  # empty, or an http(s) URL


def text_field(
    title: str,
    description: str,
    *,
    max_length: int = 100,
    pattern: str | None = None,
    default: str = "",
) -> Any:
    """A line of text: an account name, an id, a code."""
    return Field(
        default, max_length=max_length, pattern=pattern, title=title, description=description
    )


def number_field(
    default: float,
    title: str,
    description: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
) -> Any:
    """A number within bounds: a count of parts, seconds, a share between 0 and 1."""
    return Field(default, ge=ge, gt=gt, le=le, title=title, description=description)


def url_field(title: str, description: str, *, max_length: int = 300) -> Any:
    """An http(s) URL, or empty."""
    return text_field(title, description, max_length=max_length, pattern=URL_PATTERN)


def secret_field(title: str, description: str) -> Any:
    """A password, token or key: kept encrypted and never shown again."""
    return Field(SecretStr(""), title=title, description=description)


def switch_field(default: bool, title: str, description: str) -> Any:
    """An on/off choice."""
    return Field(default, title=title, description=description)


class OriginalScreenSettings(ModuleSettings):
    """The first field of the original product's module screens: the module's SMS endpoint."""

    sms_endpoint: str = text_field(
        "SMS endpoint",
        "The code by which an incoming SMS is recognised as meant for this service.",
        max_length=40,
    )

    def endpoint_code(self) -> str:
        """The module's own SMS endpoint code."""
        return self.sms_endpoint.strip()
