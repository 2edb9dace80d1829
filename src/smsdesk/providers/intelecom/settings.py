"""The settings of the two Intelecom modules: Puzzel's REST account, and the original screen."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic.json_schema import SkipJsonSchema

from smsdesk.providers.fields import (
    OriginalScreenSettings,
    number_field,
    secret_field,
    switch_field,
    text_field,
)
from smsdesk.providers.http import HttpModuleSettings


def _flag(raw: Any, key: str) -> bool:
    """A legacy true/false value as the original products wrote it."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{key} must be true or false, not '{raw}'.")


def _inverse_legacy_key(data: Any, legacy: str, key: str, field: str) -> Any:
    """Turn a legacy negative flag (e.g. noStatusReport) into our positive field."""
    if not isinstance(data, dict) or legacy not in data:
        return data
    data = dict(data)
    raw = data.pop(legacy)
    if raw is not None and str(raw).strip() != "":
        data[field] = not _flag(raw, key)
    return data


class IntelecomSettings(HttpModuleSettings):
    """The account at Puzzel's SMS gateway and how each message is sent."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "intele_serviceId": "service_id",
        "intele_username": "username",
        "intele_password": "password",
        "intele_noStatusReport": "no_status_report",  # inverse of delivery_report
        "intele_NoSmsSession": "no_sms_session",  # inverse of sms_session
    }

    service_id: str = text_field(
        "Service ID",
        "The number of your SMS service at Puzzel (Intelecom).",
        max_length=12,
        pattern=r"^\d*$",
    )
    username: str = text_field("User name", "The user name Puzzel gave you.")
    password: SecretStr = secret_field("Password", "The password Puzzel gave you.")
    delivery_report: bool = switch_field(
        True,
        "Delivery report",
        "Ask for delivery reports, to see whether each SMS reached the phone. "
        "Puzzel support must also be given the delivery-report URL.",
    )
    sms_session: bool = switch_field(
        False,
        "SMS session",
        "Start a session with each SMS so replies come back without a keyword "
        "(Norwegian numbers only; the service's short number becomes the sender).",
    )
    differentiator: str = text_field(
        "Differentiator",
        "Optional label by which Puzzel groups these messages in its statistics.",
        max_length=50,
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_flags(cls, data: Any) -> Any:
        data = _inverse_legacy_key(
            data, "no_status_report", "intele_noStatusReport", "delivery_report"
        )
        return _inverse_legacy_key(data, "no_sms_session", "intele_NoSmsSession", "sms_session")

    def wants_delivery_reports(self) -> bool:
        """The module's delivery-report switch."""
        return self.delivery_report


class OriginalIntelecomSettings(OriginalScreenSettings):
    """The fields of the original product's *Original Intelecom* screen, one for one.

    `base_url` and `timeout` are hidden from the screen (not in the schema): they exist so an
    installation or a test can point the module at another gateway.
    """

    plugin_keys: ClassVar[dict[str, str]] = {
        "intele_serviceId": "service_id",
        "intele_username": "username",
        "intele_password": "password",
    }

    use_web_service: bool = switch_field(
        True,
        "Use web service",
        "Send through the gateway's web service; off sends each SMS by e-mail, "
        "through the SMTP server and Intelecom gateway address of the E-mail to SMS module "
        "(no delivery reports then).",
    )
    delivery_report: bool = switch_field(
        True,
        "Delivery report",
        "Ask for delivery reports so you can see whether an SMS reached the phone.",
    )
    service_id: str = text_field(
        "Service ID",
        "The ID of the SMS service, a number.",
        max_length=12,
        pattern=r"^\d*$",
    )
    username: str = text_field("User name", "The user name you received from Intelecom.")
    password: SecretStr = secret_field("Password", "The password you received from Intelecom.")
    sms_priority: int = number_field(
        2,
        "SMS priority",
        "1, 2 or 3: how quickly the SMS are sent; 1 is the fastest.",
        ge=1,
        le=3,
    )
    base_url: SkipJsonSchema[str] = Field("", max_length=300, pattern=r"^(https?://[^\s]+)?$")
    timeout: SkipJsonSchema[float] = Field(15.0, gt=0, le=300)

    def wants_delivery_reports(self) -> bool:
        """The module's delivery-report switch."""
        return self.delivery_report

    def default_priority(self) -> int:
        """The module's own SMS priority."""
        return self.sms_priority
