"""E-mail to SMS: Each SMS as an e-mail to an e-mail-to-SMS gateway over SMTP."""

from __future__ import annotations

from smsdesk.providers.base import ModuleInfo, ModuleSettings


class EmailGatewaySettings(ModuleSettings):
    """The module's settings."""


MODULE = ModuleInfo(
    "email",
    "E-mail to SMS",
    "Each SMS as an e-mail to an e-mail-to-SMS gateway over SMTP.",
    EmailGatewaySettings,
    None,
)
