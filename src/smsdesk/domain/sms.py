"""What one SMS is on its way out or in, and the base of every module's settings.

These values cross between the outbox, the inbound pipeline and the provider modules, so they
belong to none of them: providers build and read them, the rest of the service stores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel

from smsdesk.domain.message import Status


@dataclass(frozen=True, slots=True)
class OutboundSms:
    """One message as a provider needs it: already validated, normalised and classified."""

    message_id: str
    to: str
    sender: str
    text: str
    encoding: str
    segments: int
    priority: int
    expires_at: float | None = None
    status_callback_url: str | None = None
    delivery_report: bool = True


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A delivery report, already mapped to our status but keeping the provider's own code."""

    provider_message_id: str
    status: Status
    raw_code: str
    description: str = ""
    occurred_at: float | None = None


@dataclass(frozen=True, slots=True)
class InboundSms:
    """A mobile-originated message as the provider handed it to us."""

    provider_message_id: str
    sender: str
    recipient: str
    text: str
    received_at: float | None = None
    session_key: str | None = None  # given only by callers that thread themselves (API)


class ModuleSettings(BaseModel):
    """Base of every module's own settings; `plugin_keys` maps the original products' keys."""

    plugin_keys: ClassVar[Mapping[str, str]] = {}

    model_config = {"extra": "forbid", "validate_assignment": True}

    # What the outbox and the inbound pipeline read from whichever module is chosen. A module
    # with its own field for one of these (Original Intelecom's SMS priority, a delivery-report
    # switch, an SMS endpoint code) overrides the method to return it.

    def default_priority(self) -> int:
        """The priority of a message whose sender names none (1 high, 2 normal, 3 low)."""
        return 2

    def wants_delivery_reports(self) -> bool:
        """Whether messages sent through this module ask the provider for a delivery report."""
        return True

    def endpoint_code(self) -> str:
        """The module's own SMS endpoint code; empty means the general one applies."""
        return ""
