"""The SMS configuration's `webhooks` section: private networks outgoing webhooks may reach.

It lives in the SMS configuration (the database) so every process of an installation applies
the same list, at subscribe time and at each delivery.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pydantic import BaseModel, Field, field_validator

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebhookSettings(BaseModel):
    """Outgoing webhooks reach public addresses only, and the networks listed here."""

    model_config = {"extra": "forbid"}

    allow_private: list[str] = Field(
        default_factory=list,
        title="Private networks webhooks may reach",
        description="Networks of on-premises receivers, e.g. 10.1.2.0/24; every other "
        "loopback, private, link-local or metadata address is refused.",
    )

    @field_validator("allow_private", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        """`settings set webhooks.allow_private=10.1.2.0/24,10.9.0.0/16` gives one string."""
        if isinstance(value, str):
            return [part for part in re.split(r"[,\s]+", value) if part]
        return value

    @field_validator("allow_private")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        networks: list[str] = []
        for text in value:
            try:
                networks.append(str(ipaddress.ip_network(text.strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"'{text}' is not a network: write an address with its prefix length, "
                    "e.g. 10.1.2.0/24 or fd00:1::/64."
                ) from None
        return list(dict.fromkeys(networks))

    def networks(self) -> tuple[Network, ...]:
        return tuple(ipaddress.ip_network(text) for text in self.allow_private)
