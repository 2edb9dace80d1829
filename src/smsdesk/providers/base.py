"""The provider interface every module implements, and the errors a send can end in.

A provider turns a batch of outbound SMS into one result each, parses the callbacks its
service sends us, and checks that those callbacks are genuine. Everything else (segmentation,
retries, throttling, storage) stays outside providers.

Errors map to what the dispatcher does next::

    ProviderError                 the provider refused or could not be reached
    ├── TemporaryError            try again later with backoff (timeouts, 5xx, connection errors)
    │   └── RateLimitedError      try again after `retry_after` seconds and slow the module down
    ├── PermanentError            never retry: the message is failed with the provider's reason
    └── AuthenticationError       credentials are wrong: keep the message queued, tell the admin

Every error also says how certain the failure is, for failing over to another connection:

- `not_taken`: the provider certainly did not take the message (the connection was refused or
  timed out before the request went out, a TLS handshake failed, credentials or the account
  were refused, 429, a 5xx without a message id, an SMPP bind that is down, a throttled
  submit). Only then may the message go to another connection. False means the provider may
  have taken it (a read timeout after the request was sent, a connection dropped mid-answer,
  an SMPP submit timeout): retried on the same connection, with the same reference, never
  failed over. A plain message refusal (a PermanentError about the number or the text) is
  certain too, but is final, so it keeps the default.
- `connection_level`: the failure concerns the connection or the account, not this message
  (unreachable, a timeout or a dropped connection even when ambiguous, credentials,
  throttling, no credit, no route for the account): it counts for the circuit breaker, and a
  PermanentError marked so may fail over.

Both default to False (the safe reading: same connection, not counted); AuthenticationError and
RateLimitedError default both to True, as a refusal of credentials or a request to slow down is
always before the provider took anything and always about the connection.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx

from smsdesk.domain.sms import InboundSms, ModuleSettings, OutboundSms, StatusReport


class ProviderError(Exception):
    """A send or callback the provider could not handle; keeps the provider's code and text.

    `not_taken` and `connection_level` say how certain the failure is (module docstring).
    """

    default_not_taken: ClassVar[bool] = False
    default_connection_level: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        not_taken: bool | None = None,
        connection_level: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.not_taken: bool = self.default_not_taken if not_taken is None else not_taken
        self.connection_level: bool = (
            self.default_connection_level if connection_level is None else connection_level
        )


class TemporaryError(ProviderError):
    """Worth retrying: the provider or the network failed, not the message."""


class RateLimitedError(TemporaryError):
    """The provider asks us to slow down, optionally saying for how long."""

    default_not_taken: ClassVar[bool] = True
    default_connection_level: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        not_taken: bool | None = None,
        connection_level: bool | None = None,
    ) -> None:
        super().__init__(message, code=code, not_taken=not_taken, connection_level=connection_level)
        self.retry_after = retry_after


class PermanentError(ProviderError):
    """The provider will never accept this message as it is."""


class AuthenticationError(ProviderError):
    """The provider refused our credentials; every message would fail the same way."""

    default_not_taken: ClassVar[bool] = True
    default_connection_level: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class SendResult:
    """What became of one message of a batch: a provider id, or the error that stopped it."""

    message_id: str
    provider_message_id: str | None = None
    error: ProviderError | None = None
    raw_code: str | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """An HTTP callback from a provider, independent of the web framework that received it."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    form: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    """What we answer a provider's callback with; some providers expect a specific body."""

    status_code: int = 200
    body: str = ""
    media_type: str = "text/plain"


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """What a provider may need from the installation besides its own settings."""

    data_dir: Path
    sender: str = ""
    public_url: str = ""
    # For protocols whose reports and inbound messages arrive over the provider's own
    # connection (SMPP) rather than an HTTP callback: stores them like the webhooks do.
    on_reports: Callable[[list[StatusReport]], Awaitable[None]] | None = None
    on_inbound: Callable[[list[InboundSms]], Awaitable[None]] | None = None
    # The installation's e-mail settings (the email module's), for providers that declare
    # `uses_email_module`: Original Intelecom sends by e-mail when its web service is off.
    email_settings: ModuleSettings | None = None


class Transport(enum.StrEnum):
    """How a module reaches its provider."""

    HTTP = "http"  # requests to the provider's HTTP API; reports come to our webhooks
    SMPP = "smpp"  # a session the module keeps open to an SMSC
    SMTP = "smtp"  # e-mail to a gateway
    NONE = "none"  # nothing leaves the process (the simulator)


class Provider(abc.ABC):
    """One SMS module speaking one provider's protocol."""

    # Declared by every module: how it reaches the provider. Each HTTP module has a fake of its
    # provider's server in `smsdesk.testing.fakes`, run by the contract suite, unless
    # `without_fake` says why not; every other module says there why it has none.
    transport: ClassVar[Transport | None] = None
    without_fake: ClassVar[str] = ""
    max_batch: ClassVar[int] = 1
    uses_email_module: ClassVar[bool] = False  # give it the email module's settings
    # Whether `query_status` works: the provider's API can be asked about a sent message;
    # how many ids one call takes, and how often (seconds) the provider allows a call at most.
    supports_status_query: ClassVar[bool] = False
    status_query_batch: ClassVar[int] = 20
    status_query_interval: ClassVar[float] = 0.0
    # Whether the provider drops a second submission carrying the same client reference (our
    # message id) within one account: a retry on the same connection after an ambiguous failure
    # is then safe. It never makes failing over to another account safe.
    dedupes_reference: ClassVar[bool] = False
    # Whether `find_sent` works: the provider can be asked, by our message id, whether it took
    # a message. A message whose sender died before recording the answer is then not sent again.
    supports_sent_lookup: ClassVar[bool] = False

    def __init__(self, settings: Any, http: httpx.AsyncClient, context: ProviderContext) -> None:
        self.settings = settings
        self.http = http
        self.context = context

    async def start(self) -> None:
        """Start what runs beside sending (e.g. a connection or a report loop)."""

    @abc.abstractmethod
    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        """Send up to `max_batch` messages; return one result per message, in order."""

    def verify_callback(self, request: CallbackRequest, secret: str) -> bool:
        """Whether a callback is genuine; by default the URL secret was checked by the router."""
        return True

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        """Turn a delivery-report callback into reports; raise ValueError when malformed."""
        raise ValueError("This module does not receive delivery reports.")

    def parse_inbound(self, request: CallbackRequest) -> list[InboundSms]:
        """Turn an inbound callback into messages; raise ValueError when malformed."""
        raise ValueError("This module does not receive inbound messages.")

    def callback_answer(
        self, kind: str, request: CallbackRequest, parsed: Sequence[StatusReport | InboundSms]
    ) -> CallbackAnswer:
        """The answer the provider expects after a callback we accepted.

        `kind` is "status" or "inbound", `request` the callback and `parsed` what its parser
        read from it; a provider that acknowledges each item it posted answers from them.
        """
        return CallbackAnswer()

    async def query_status(self, provider_message_ids: Sequence[str]) -> list[StatusReport]:
        """Ask the provider about sent messages (only if `supports_status_query`).

        Returns a report for each message whose status is final at the provider; messages
        still under way and ids the provider does not know are left out. Failures raise the
        module's usual ProviderError kinds.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot be asked for a status.")

    async def find_sent(self, message_ids: Sequence[str]) -> dict[str, str]:
        """Which of these messages (our ids) the provider took, each with its own id for it
        (only if `supports_sent_lookup`). Ids it does not know are left out; failures raise
        the module's usual ProviderError kinds."""
        raise NotImplementedError(f"{type(self).__name__} cannot be asked what it took.")

    async def has_pending_callbacks(self) -> bool:
        """Whether this instance itself still has reports to make (only the simulator does:
        real providers call our webhooks from their side)."""
        return False

    async def close(self) -> None:
        """Release what the provider holds (background tasks, connections)."""


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    """What the configuration screen and the dispatcher need to know about a module."""

    name: str
    title: str
    description: str
    settings_model: type[ModuleSettings]
    provider_class: type[Provider] | None

    @property
    def available(self) -> bool:
        """Whether the module can send in this version (some exist only as configuration)."""
        return self.provider_class is not None

    @property
    def supports_status_query(self) -> bool:
        """Whether the module's API can be asked about a sent message's status."""
        return self.provider_class is not None and self.provider_class.supports_status_query

    @property
    def transport(self) -> Transport | None:
        """How the module reaches its provider, as its provider class declares."""
        return self.provider_class.transport if self.provider_class is not None else None
