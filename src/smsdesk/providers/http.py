"""What every HTTP provider module shares: one request with its failures classified.

A module calls `request()` and gets a response it must interpret, or a `ProviderError` for the
failures that look the same at every provider: the network, timeouts, throttling, 5xx
(`TRANSPORT_ERRORS`). A module that reads some HTTP statuses its own way passes its table of
them; what an answer means beyond that (a 400 with an error code in its body) the module reads
with its own `ErrorTable`.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

import httpx

from smsdesk.domain.sms import ModuleSettings
from smsdesk.providers.base import (
    AuthenticationError,
    ProviderError,
    RateLimitedError,
    TemporaryError,
)
from smsdesk.providers.errors import ErrorTable, Meaning
from smsdesk.providers.fields import number_field, url_field
from smsdesk.providers.timestamps import http_date

# The answers that mean the same at every provider. A 5xx comes without a message id, so the
# provider did not take the message, except 504: a gateway in front of the provider gave up
# waiting for it, which is the read timeout of a request that was sent (ambiguous).
TRANSPORT_ERRORS = ErrorTable(
    {
        429: Meaning(RateLimitedError, "The provider asks us to slow down (HTTP 429): {said}"),
        401: Meaning(
            AuthenticationError,
            "The provider refused the credentials (HTTP 401); check the module's user name, "
            "password, token or key. It said: {said}",
        ),
        504: Meaning(
            TemporaryError,
            "The provider's gateway timed out (HTTP 504); the provider may have taken the "
            "message: {said}",
            connection_level=True,
        ),
        range(500, 1000): Meaning(
            TemporaryError,
            "The provider failed (HTTP {key}): {said}",
            not_taken=True,
            connection_level=True,
        ),
    },
    code="http-{key}",
)
# Failures before the request went out: nothing reached the provider. (A TLS handshake that
# fails is a ConnectError.)
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class HttpModuleSettings(ModuleSettings):
    """Fields every HTTP module has besides its credentials."""

    base_url: str = url_field(
        "Base URL", "Where the provider's API lives; empty means its production host."
    )
    timeout: float = number_field(
        15.0,
        "Timeout (seconds)",
        "How long to wait for the provider before trying again later.",
        gt=0,
        le=300,
    )


def api_base(configured: str, default: str) -> str:
    """The configured base URL without a trailing slash, or the provider's own host."""
    return (configured or default).rstrip("/")


def endpoint(configured: str, default: str, path: str) -> str:
    """The URL of one API endpoint: the base URL with `path`, unless it already ends in it."""
    base = api_base(configured, default)
    return base if base.endswith(path) else base + path


def retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date); None when absent."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    when = http_date(value)
    if when is None:
        return None
    return max(0.0, when - (time.time() if now is None else now))


def short(text: str, limit: int = 300) -> str:
    """A provider's answer trimmed for an error message (bodies can be whole HTML pages)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def answer_json(response: httpx.Response) -> Any:
    """The answer's JSON, or None when it is none (an HTML error page, an empty body)."""
    try:
        return response.json()
    except ValueError:
        return None


def status_error(response: httpx.Response, table: ErrorTable, **values: Any) -> ProviderError:
    """The error `table` gives the answer's HTTP status, the provider's answer as its reason."""
    return table.error(
        response.status_code,
        reason=short(response.text),
        retry_after=retry_after(response),
        **values,
    )


async def request(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    timeout: float,
    errors: ErrorTable | None = None,
    own: Collection[int] = (),
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; network failures, timeouts and 5xx become TemporaryError.

    429 becomes RateLimitedError with the Retry-After the provider gave, and 401 becomes
    AuthenticationError. `errors` (a table without a default) names the statuses the module
    gives its own meaning, looked up first; the statuses in `own` are returned for the module to
    read whatever the shared table says, as is any other answer.

    A failure before the request went out (refused, connect timeout, TLS handshake) is
    `not_taken`; one after it was sent (read or write timeout, a connection dropped before the
    whole answer came) is ambiguous: the provider may have taken the message. Both are
    `connection_level`.
    """
    try:
        response = await http.request(method, url, timeout=timeout, **kwargs)
    except NOT_SENT as exc:
        raise TemporaryError(
            f"Could not reach the provider at {url.split('?')[0]}: "
            f"{exc or type(exc).__name__} ({type(exc).__name__}).",
            code="connection",
            not_taken=True,
            connection_level=True,
        ) from exc
    except httpx.TimeoutException as exc:
        raise TemporaryError(
            f"The provider did not answer within {timeout:g} s ({type(exc).__name__}); it may "
            "have taken the message.",
            code="timeout",
            connection_level=True,
        ) from exc
    except httpx.TransportError as exc:
        raise TemporaryError(
            f"The connection to the provider at {url.split('?')[0]} broke before its answer "
            f"came ({exc or type(exc).__name__}); it may have taken the message.",
            code="connection-lost",
            connection_level=True,
        ) from exc
    if response.status_code in own:
        return response
    for table in (errors, TRANSPORT_ERRORS):
        if table is not None and table.find(response.status_code) is not None:
            raise status_error(response, table)
    return response
