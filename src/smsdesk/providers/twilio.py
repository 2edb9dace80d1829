"""Twilio: Twilio Programmable Messaging (Messages API)."""

from __future__ import annotations

from typing import ClassVar

from smsdesk.providers.base import ModuleInfo
from smsdesk.providers.http import HttpModuleSettings


class TwilioSettings(HttpModuleSettings):
    """The module's settings."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "twilio_account_sid": "account_sid",
        "twilio_auth_token": "auth_token",
    }

    account_sid: str = ""
    auth_token: str = ""


MODULE = ModuleInfo(
    "twilio", "Twilio", "Twilio Programmable Messaging (Messages API).", TwilioSettings, None
)
