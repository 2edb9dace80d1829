"""PSWinCom (LINK Mobility) XML gateway: the settings of the *Original PsWinCom* module."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from smsdesk.providers.base import ModuleInfo, ModuleSettings
from smsdesk.providers.http import HttpModuleSettings


class OriginalPsWinComSettings(ModuleSettings):
    """The fields of the original product's *Original PsWinCom* screen, one for one."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "pswin_username": "username",
        "pswin_password": "password",
    }

    sms_endpoint: str = Field(
        "",
        max_length=40,
        title="SMS endpoint",
        description="The code by which an incoming SMS is recognised as meant for this service.",
    )
    username: str = Field(
        "",
        max_length=100,
        title="User name",
        description="The user name you received from PsWinCom.",
    )
    password: SecretStr = Field(
        SecretStr(""), title="Password", description="The password you received from PsWinCom."
    )


class PsWinComSettings(HttpModuleSettings):
    """The module's settings."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "pswin_username": "username",
        "pswin_password": "password",
    }

    username: str = ""


MODULE = ModuleInfo(
    "pswincom",
    "LINK Mobility (PSWinCom)",
    "PSWinCom (LINK Mobility) XML gateway.",
    PsWinComSettings,
    None,
)
ORIGINAL_MODULE = ModuleInfo(
    "original_pswincom",
    "Original PsWinCom",
    "PSWinCom (LINK Mobility) XML gateway (on-site installations).",
    OriginalPsWinComSettings,
    None,
)
