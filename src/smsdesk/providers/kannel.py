"""Kannel: Kannel gateway over its sendsms HTTP interface."""

from __future__ import annotations

from smsdesk.providers.base import ModuleInfo, ModuleSettings


class KannelSettings(ModuleSettings):
    """The module's settings."""


MODULE = ModuleInfo(
    "kannel", "Kannel", "Kannel gateway over its sendsms HTTP interface.", KannelSettings, None
)
