"""Intelecom (Puzzel) SMS gateway: the settings of the *Original Intelecom* module."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from smsdesk.providers.base import ModuleInfo, ModuleSettings
from smsdesk.providers.http import HttpModuleSettings


class OriginalIntelecomSettings(ModuleSettings):
    """The fields of the original product's *Original Intelecom* screen, one for one."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "intele_serviceId": "service_id",
        "intele_username": "username",
        "intele_password": "password",
    }

    sms_endpoint: str = Field(
        "",
        max_length=40,
        title="SMS endpoint",
        description="The code by which an incoming SMS is recognised as meant for this service.",
    )
    use_web_service: bool = Field(
        True,
        title="Use web service",
        description="Send through the gateway's web service; off sends each SMS by e-mail.",
    )
    delivery_report: bool = Field(
        True,
        title="Delivery report",
        description="Ask for delivery reports so you can see whether an SMS reached the phone.",
    )
    service_id: str = Field(
        "",
        pattern=r"^\d*$",
        max_length=12,
        title="Service ID",
        description="The ID of the SMS service, a number.",
    )
    username: str = Field(
        "",
        max_length=100,
        title="User name",
        description="The user name you received from Intelecom.",
    )
    password: SecretStr = Field(
        SecretStr(""), title="Password", description="The password you received from Intelecom."
    )
    sms_priority: int = Field(
        2,
        ge=1,
        le=3,
        title="SMS priority",
        description="1, 2 or 3: how quickly the SMS are sent; 1 is the fastest.",
    )


class IntelecomSettings(HttpModuleSettings):
    """The module's settings."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "intele_serviceId": "service_id",
        "intele_username": "username",
        "intele_password": "password",
    }

    service_id: str = ""
    username: str = ""


MODULE = ModuleInfo(
    "intelecom",
    "Intelecom (Puzzel)",
    "Intelecom/Puzzel SMS gateway REST API.",
    IntelecomSettings,
    None,
)
ORIGINAL_MODULE = ModuleInfo(
    "original_intelecom",
    "Original Intelecom",
    "Intelecom SMS gateway, by web service or by e-mail (on-site installations).",
    OriginalIntelecomSettings,
    None,
)
