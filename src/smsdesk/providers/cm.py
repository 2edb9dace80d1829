"""CM.com: CM.com Business Messaging API."""

from __future__ import annotations

from typing import ClassVar

from smsdesk.providers.base import ModuleInfo
from smsdesk.providers.http import HttpModuleSettings


class CmSettings(HttpModuleSettings):
    """The module's settings."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "cm_serviceId": "customer_id",
        "cm_username": "username",
        "cm_password": "password",
    }

    customer_id: str = ""
    username: str = ""
    password: str = ""


MODULE = ModuleInfo("cm", "CM.com", "CM.com Business Messaging API.", CmSettings, None)
