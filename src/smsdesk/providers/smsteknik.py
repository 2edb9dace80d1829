"""SMS Teknik: SMS Teknik XML API."""

from __future__ import annotations

from typing import ClassVar

from smsdesk.providers.base import ModuleInfo
from smsdesk.providers.http import HttpModuleSettings


class SmsTeknikSettings(HttpModuleSettings):
    """The module's settings."""

    plugin_keys: ClassVar[dict[str, str]] = {
        "smsteknik_serviceId": "company_id",
        "smsteknik_username": "username",
        "smsteknik_password": "password",
    }

    company_id: str = ""
    username: str = ""
    password: str = ""


MODULE = ModuleInfo("smsteknik", "SMS Teknik", "SMS Teknik XML API.", SmsTeknikSettings, None)
