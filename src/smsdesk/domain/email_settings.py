"""The SMS configuration's `email` section: the mail server that sends notifications to agents.

Empty `host` sends no e-mail (notifications by e-mail wait until it is set). The password is a
secret: encrypted at rest, shown masked, kept when a blank or masked value is saved.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

Security = Literal["none", "starttls", "tls"]
_ADDRESS = re.compile(r"[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+")
_HOST = re.compile(r"[A-Za-z0-9.\-:\[\]]+")


SENDER_NEEDED = "A sender address is needed to send e-mail; enter one."


def is_email_address(value: str) -> bool:
    """A plain address (name@domain.tld), without display name."""
    return bool(_ADDRESS.fullmatch(value))


class EmailSettings(BaseModel):
    """Where notification e-mails go out: SMTP server, security, login and sender address."""

    model_config = {"extra": "forbid"}

    host: str = Field(
        "",
        max_length=200,
        title="SMTP server",
        description="Host name of the mail server; empty sends no e-mail.",
    )
    port: int = Field(
        587,
        ge=1,
        le=65535,
        title="SMTP port",
        description="587 for STARTTLS, 465 for TLS, 25 for a plain relay.",
    )
    security: Security = Field(
        "starttls",
        title="Security",
        description="starttls: upgrade to TLS after connecting (port 587); tls: TLS from the "
        "start (port 465); none: no encryption (only on a trusted network).",
    )
    username: str = Field(
        "",
        max_length=200,
        title="SMTP user name",
        description="Empty: send without logging in (a relay that trusts this machine).",
    )
    password: SecretStr = Field(
        SecretStr(""),
        title="SMTP password",
        description="The password of the SMTP user.",
    )
    sender: str = Field(
        "",
        max_length=200,
        title="Sender address",
        description="The From address of notifications, e.g. smsdesk@example.org.",
    )

    ca_file: str = Field(
        "",
        max_length=1000,
        title="Trusted certificates",
        description="Path of a PEM file with the certificate authority of the SMTP server, "
        "when it is not publicly trusted (e.g. an in-house CA). Empty: the system's.",
    )

    @field_validator("host", "username", "sender", "ca_file")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if value and not _HOST.fullmatch(value):
            raise ValueError("Enter a host name or IP address, without http:// or a path.")
        return value

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if value and not is_email_address(value):
            raise ValueError("Enter an e-mail address such as smsdesk@example.org.")
        return value

    @property
    def configured(self) -> bool:
        """Whether e-mail can be sent at all."""
        return bool(self.host and self.sender)
