"""Compaya (CPSMS): CPSMS (Compaya) SMS API v2."""

from __future__ import annotations

from typing import ClassVar

from smsdesk.providers.base import ModuleInfo
from smsdesk.providers.http import HttpModuleSettings


class CompayaSettings(HttpModuleSettings):
    """The module's settings."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "compaya_username": "username",
        "compaya_password": "password",
    }

    username: str = ""
    password: str = ""


MODULE = ModuleInfo(
    "compaya", "Compaya (CPSMS)", "CPSMS (Compaya) SMS API v2.", CompayaSettings, None
)
