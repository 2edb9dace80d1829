"""The error tables every HTTP module declares its codes in, and the shared HTTP statuses."""

from __future__ import annotations

import httpx
import pytest

from smsdesk.providers.base import (
    AuthenticationError,
    PermanentError,
    RateLimitedError,
    TemporaryError,
)
from smsdesk.providers.errors import ErrorTable, Meaning
from smsdesk.providers.http import TRANSPORT_ERRORS, request, status_error

TABLE = ErrorTable(
    {
        (101, 103): Meaning(AuthenticationError, "credentials {code}.{said}"),
        "busy": Meaning(RateLimitedError, "slow down: {reason}", retry_after=60.0),
        range(500, 600): Meaning(TemporaryError, "failed {key} at {where}"),
        "moved": Meaning(PermanentError, "gone", code="fixed-code"),
    },
    prefixes={"no ": Meaning(PermanentError, "short"), "no sms": Meaning(TemporaryError, "long")},
    default=Meaning(PermanentError, "unknown {code}{said}"),
    said=" It said: {}",
)


def test_a_code_gets_its_class_code_and_text() -> None:
    error = TABLE.error(103, reason="wrong token")

    assert type(error) is AuthenticationError
    assert (error.code, error.message) == ("103", "credentials 103. It said: wrong token")


def test_the_reason_is_framed_only_when_given() -> None:
    assert TABLE.error(101).message == "credentials 101."
    assert TABLE.error("x", reason="").message == "unknown x"


def test_ranges_prefixes_and_the_default_are_looked_up_in_that_order() -> None:
    assert type(TABLE.error(502, where="the gateway")) is TemporaryError
    assert TABLE.error(502, where="the gateway").message == "failed 502 at the gateway"
    assert TABLE.error("no sms left").message == "long"  # the longest prefix wins
    assert TABLE.error("no route").message == "short"
    assert TABLE.error(999).message == "unknown 999"


def test_a_rate_limit_takes_the_answers_pause_or_the_tables() -> None:
    own = TABLE.error("busy", reason="x")
    given = TABLE.error("busy", retry_after=5.0)

    assert isinstance(own, RateLimitedError) and own.retry_after == 60.0
    assert isinstance(given, RateLimitedError) and given.retry_after == 5.0


def test_the_carried_code_can_be_fixed_by_the_meaning_or_the_caller() -> None:
    assert TABLE.error("moved").code == "fixed-code"
    assert TABLE.error(101, code="0:Access denied").code == "0:Access denied"


def test_a_table_without_default_names_only_its_codes() -> None:
    table = ErrorTable({401: Meaning(AuthenticationError, "no")}, code="http-{key}")

    assert table.find(404) is None
    assert table.error(401).code == "http-401"
    with pytest.raises(LookupError):
        table.error(404)


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (401, AuthenticationError, "http-401"),
        (429, RateLimitedError, "http-429"),
        (500, TemporaryError, "http-500"),
        (503, TemporaryError, "http-503"),
    ],
)
def test_the_shared_http_statuses(status: int, kind: type[Exception], code: str) -> None:
    response = httpx.Response(status, text="  nope  ", headers={"retry-after": "7"})
    error = status_error(response, TRANSPORT_ERRORS)

    assert type(error) is kind and error.code == code
    assert error.message.endswith(": nope")
    if isinstance(error, RateLimitedError):
        assert error.retry_after == 7.0


@pytest.mark.parametrize(
    ("status", "raised"), [(401, False), (403, True), (500, True), (200, False)]
)
async def test_a_modules_own_statuses_come_first_and_own_ones_come_back(
    status: int, raised: bool
) -> None:
    module = ErrorTable({403: Meaning(PermanentError, "ours")})
    transport = httpx.MockTransport(lambda _: httpx.Response(status, text="x"))
    async with httpx.AsyncClient(transport=transport) as client:
        if raised:
            with pytest.raises(PermanentError if status == 403 else TemporaryError):
                await request(client, "GET", "http://p/", timeout=1, errors=module, own=(401,))
        else:
            answer = await request(client, "GET", "http://p/", timeout=1, errors=module, own=(401,))
            assert answer.status_code == status
