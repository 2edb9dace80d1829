"""Textlocal: Textlocal (Txtlocal) send API."""

from __future__ import annotations

from typing import ClassVar

from smsdesk.providers.base import ModuleInfo
from smsdesk.providers.http import HttpModuleSettings


class TxtlocalSettings(HttpModuleSettings):
    """The module's settings."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "txtlocal_username": "username",
        "txtlocal_password": "password",
    }

    username: str = ""
    password: str = ""


MODULE = ModuleInfo(
    "txtlocal", "Textlocal", "Textlocal (Txtlocal) send API.", TxtlocalSettings, None
)
