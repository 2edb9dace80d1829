"""Each module's own answer codes, by how certain the failure is.

An account's refusal (no credit, no gate or route, a sender the account may not use) is
connection-level and not taken, so the message may go out over another connection; a refusal
of the message itself is neither, so it fails where it is.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from smsdesk.domain.sms import OutboundSms
from smsdesk.providers import (
    cm,
    compaya,
    kannel,
    linkmobility,
    pswincom,
    smsteknik,
    twilio,
    txtlocal,
)
from smsdesk.providers.base import (
    AuthenticationError,
    PermanentError,
    ProviderError,
    RateLimitedError,
    TemporaryError,
)
from smsdesk.providers.intelecom import wire

ACCOUNT = (True, True)  # not taken, connection-level
PAGE = "<html><body>403 Forbidden</body></html>"
SMS = OutboundSms("m1", "+31612345678", "Smsdesk", "Hello", "gsm7", 1, 2)


def raised(action: Callable[[], object]) -> ProviderError:
    """The error `action` raises (a module reading an answer raises what it means)."""
    with pytest.raises(ProviderError) as caught:
        action()
    return caught.value


MESSAGE = (False, False)

CASES: list[tuple[str, Callable[[], ProviderError], type[ProviderError], tuple[bool, bool]]] = [
    (
        "twilio 21606 sender not of the account",
        lambda: twilio.CODES.error(21606, more=""),
        PermanentError,
        ACCOUNT,
    ),
    (
        "twilio 21408 country not enabled",
        lambda: twilio.CODES.error(21408, more=""),
        PermanentError,
        ACCOUNT,
    ),
    (
        "twilio 21211 invalid number",
        lambda: twilio.CODES.error(21211, more=""),
        PermanentError,
        MESSAGE,
    ),
    (
        "twilio 20003 credentials",
        lambda: twilio.CODES.error(20003, more=""),
        AuthenticationError,
        ACCOUNT,
    ),
    (
        "link 106300 no gates",
        lambda: linkmobility.error_for_code(106300, ""),
        TemporaryError,
        ACCOUNT,
    ),
    (
        "link 106301 gate unavailable",
        lambda: linkmobility.error_for_code(106301, ""),
        TemporaryError,
        ACCOUNT,
    ),
    (
        "link 2002 alphanumeric senders not allowed",
        lambda: linkmobility.error_for_code(2002, ""),
        PermanentError,
        ACCOUNT,
    ),
    (
        "link 104 configuration error",
        lambda: linkmobility.error_for_code(104, ""),
        PermanentError,
        ACCOUNT,
    ),
    (
        "link 106200 platform id",
        lambda: linkmobility.error_for_code(106200, ""),
        AuthenticationError,
        ACCOUNT,
    ),
    (
        "link 2104 unknown subscriber",
        lambda: linkmobility.error_for_code(2104, ""),
        PermanentError,
        MESSAGE,
    ),
    ("link 3 throttling", lambda: linkmobility.error_for_code(3, ""), RateLimitedError, ACCOUNT),
    ("cm 102 balance too low", lambda: cm.ERRORS.error(102), AuthenticationError, ACCOUNT),
    ("cm 500 internal error", lambda: cm.ERRORS.error(500), TemporaryError, ACCOUNT),
    ("cm 303 invalid number", lambda: cm.ERRORS.error(303), PermanentError, MESSAGE),
    ("cm 999 unknown error", lambda: cm.ERRORS.error(999), TemporaryError, (False, False)),
    ("compaya 402 no credit", lambda: compaya._error_for("402", ""), AuthenticationError, ACCOUNT),
    ("compaya 403 IP check", lambda: compaya._error_for("403", ""), AuthenticationError, ACCOUNT),
    ("compaya 500 failure", lambda: compaya._error_for("500", ""), TemporaryError, ACCOUNT),
    ("compaya 400 refused", lambda: compaya._error_for("400", "bad"), PermanentError, MESSAGE),
    ("textlocal 7 no credits", lambda: txtlocal.CODES.error(7), TemporaryError, ACCOUNT),
    ("textlocal 43 sender not approved", lambda: txtlocal.CODES.error(43), PermanentError, ACCOUNT),
    ("textlocal 32 number format", lambda: txtlocal.CODES.error(32), PermanentError, MESSAGE),
    (
        "sms teknik no sms left",
        lambda: smsteknik.error_for("0:No SMS Left", "+46701234567"),
        RateLimitedError,
        ACCOUNT,
    ),
    (
        "sms teknik access denied",
        lambda: smsteknik.error_for("0:Access denied", "+4670"),
        AuthenticationError,
        ACCOUNT,
    ),
    (
        "sms teknik invalid number",
        lambda: smsteknik.error_for("0:Invalid phonenumber", "+4670"),
        PermanentError,
        MESSAGE,
    ),
    ("sms teknik other page", lambda: smsteknik.HTTP_ERRORS.error(404), TemporaryError, ACCOUNT),
    ("pswincom other page", lambda: pswincom.HTTP_ERRORS.error(404), TemporaryError, ACCOUNT),
    (
        "kannel not routable",
        lambda: kannel.error_for(403, "Not routable. Do not try again."),
        PermanentError,
        ACCOUNT,
    ),
    (
        "kannel authorization",
        lambda: kannel.error_for(403, "Authorization failed for sendsms"),
        AuthenticationError,
        ACCOUNT,
    ),
    (
        "kannel refused",
        lambda: kannel.error_for(400, "Missing receiver number"),
        PermanentError,
        MESSAGE,
    ),
    (
        "intelecom 6 internal error",
        lambda: wire.STATUS_ERRORS.error("6", service="1", status="6"),
        TemporaryError,
        ACCOUNT,
    ),
    (
        "intelecom 2 credentials",
        lambda: wire.STATUS_ERRORS.error("2", service="1", status="2"),
        AuthenticationError,
        ACCOUNT,
    ),
    (
        "intelecom 5 syntax",
        lambda: wire.STATUS_ERRORS.error("5", service="1", status="5"),
        PermanentError,
        MESSAGE,
    ),
    (
        "cm: another page refuses (403)",
        lambda: raised(lambda: cm.read_answer(httpx.Response(403, text=PAGE), [SMS])),
        TemporaryError,
        ACCOUNT,
    ),
    (
        "cm: 200 that is not CM's reply",
        lambda: raised(lambda: cm.read_answer(httpx.Response(200, text=PAGE), [SMS])),
        TemporaryError,
        (False, True),
    ),
    (
        "textlocal: another page refuses (403)",
        lambda: raised(lambda: txtlocal.read_answer(httpx.Response(403, text=PAGE))),
        TemporaryError,
        ACCOUNT,
    ),
]


@pytest.mark.parametrize(
    ("build", "kind", "certainty"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_modules_code_says_how_certain_the_failure_is(
    build: Callable[[], ProviderError], kind: type[ProviderError], certainty: tuple[bool, bool]
) -> None:
    """The error class decides retry or fail; the two flags decide failover and the breaker."""
    error = build()

    assert type(error) is kind
    assert (error.not_taken, error.connection_level) == certainty
