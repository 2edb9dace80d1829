"""What every HTTP provider module shares: one request with its failures classified.

A module calls `request()` and gets a response it must interpret, or a `ProviderError` for the
failures that look the same at every provider: the network, timeouts, throttling, 5xx. What an
answer means beyond that (a 400 with an error code in its body) is the module's own business.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
from pydantic import Field

from smsdesk.domain.sms import ModuleSettings
from smsdesk.providers.base import AuthenticationError, RateLimitedError, TemporaryError


class HttpModuleSettings(ModuleSettings):
    """Fields every HTTP module has besides its credentials."""

    base_url: str = Field(
        "",
        max_length=300,
        pattern=r"^(https?://[^\s]+)?$",
        title="Base URL",
        description="Where the provider's API lives; empty means its production host.",
    )
    timeout: float = Field(
        15.0,
        gt=0,
        le=300,
        title="Timeout (seconds)",
        description="How long to wait for the provider before trying again later.",
    )


def api_base(configured: str, default: str) -> str:
    """The configured base URL without a trailing slash, or the provider's own host."""
    return (configured or default).rstrip("/")


def retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date); None when absent."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def short(text: str, limit: int = 300) -> str:
    """A provider's answer trimmed for an error message (bodies can be whole HTML pages)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def request(
    http: httpx.AsyncClient, method: str, url: str, *, timeout: float, **kwargs: Any
) -> httpx.Response:
    """Send one request; network failures, timeouts and 5xx become TemporaryError.

    429 becomes RateLimitedError with the Retry-After the provider gave, and 401 becomes
    AuthenticationError. Any other answer is returned for the module to read.
    """
    try:
        response = await http.request(method, url, timeout=timeout, **kwargs)
    except httpx.TimeoutException as exc:
        raise TemporaryError(
            f"The provider did not answer within {timeout:g} s ({type(exc).__name__}).",
            code="timeout",
        ) from exc
    except httpx.TransportError as exc:
        raise TemporaryError(
            f"Could not reach the provider at {url.split('?')[0]}: {exc or type(exc).__name__}.",
            code="connection",
        ) from exc
    if response.status_code == 429:
        raise RateLimitedError(
            f"The provider asks us to slow down (HTTP 429): {short(response.text)}",
            code="http-429",
            retry_after=retry_after(response),
        )
    if response.status_code == 401:
        raise AuthenticationError(
            "The provider refused the credentials (HTTP 401); check the module's user name, "
            f"password, token or key. It said: {short(response.text)}",
            code="http-401",
        )
    if response.status_code >= 500:
        raise TemporaryError(
            f"The provider failed (HTTP {response.status_code}): {short(response.text)}",
            code=f"http-{response.status_code}",
        )
    return response
