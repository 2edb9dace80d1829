"""SMPP: SMPP 3.4 connection to an SMSC or gateway."""

from __future__ import annotations

from smsdesk.providers.base import ModuleInfo, ModuleSettings


class SmppSettings(ModuleSettings):
    """The module's settings."""


MODULE = ModuleInfo(
    "smpp", "SMPP", "SMPP 3.4 connection to an SMSC or gateway.", SmppSettings, None
)
