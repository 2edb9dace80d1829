"""What feature code may use of the running process, as protocols the service satisfies.

Features (customers, conversations, inbound actions, the send test) are called by the web app
and the commands with the `Service` itself, but must not import it (it imports them). They name
the parts they use here instead, so the arrow points one way and a test can hand in anything
that has these parts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Engine

from smsdesk.domain.settings import SmsConfiguration
from smsdesk.store.writer import Writer


class ConfigurationSource(Protocol):
    """Where the current SMS configuration comes from (the configuration store)."""

    def load(self) -> SmsConfiguration:
        """The current SMS configuration."""


class Host(Protocol):
    """The database, its writer, the SMS configuration and the clock of the running process."""

    @property
    def engine(self) -> Engine: ...

    @property
    def writer(self) -> Writer: ...

    @property
    def settings(self) -> ConfigurationSource: ...

    @property
    def clock(self) -> Callable[[], float]: ...


class SendingHost(Host, Protocol):
    """A host whose dispatcher can be woken when new messages are queued."""

    def wake_dispatcher(self) -> None:
        """Look at the outbox now rather than at the next scan."""
