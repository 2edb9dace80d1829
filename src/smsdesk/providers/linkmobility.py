"""LINK Mobility: LINK Mobility SMS REST API (send and sendbatch)."""

from __future__ import annotations

from typing import ClassVar

from smsdesk.providers.base import ModuleInfo
from smsdesk.providers.http import HttpModuleSettings


class LinkMobilitySettings(HttpModuleSettings):
    """The module's settings."""

    plugin_keys: ClassVar[dict[str, str]] = {}


MODULE = ModuleInfo(
    "linkmobility",
    "LINK Mobility",
    "LINK Mobility SMS REST API (send and sendbatch).",
    LinkMobilitySettings,
    None,
)
