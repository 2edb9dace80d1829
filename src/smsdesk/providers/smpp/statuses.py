"""What an SMSC's answers mean for us: command_status values mapped onto the provider errors.

The dispatcher acts on the error's class (retry, slow down, fail, tell the admin), so this
mapping decides what a user sees when the SMSC refuses; it is kept apart from the session so it
can be read and checked without one. Also the one bind PDU we build by hand (see `SmppSession`).

How certain a failure is (see `providers.base`): a bind that is down or refused, throttling
(0x58), a full queue (0x14) and a system error (0x08) answered to submit_sm mean the SMSC did
not take the message (`not_taken`, `connection_level`); a submit_sm left unanswered, or a
session that broke while one was out, is ambiguous (the SMSC may have taken it).
"""

from __future__ import annotations

import re
import struct

from smsdesk.providers.base import (
    AuthenticationError,
    PermanentError,
    ProviderError,
    RateLimitedError,
    TemporaryError,
)

BIND_TRANSMITTER = 0x00000002

# command_status values (SMPP 3.4 §5.1.3).
RINVPASWD, RINVSYSID, RBINDFAIL, RINVSYSTYP = 0x0E, 0x0F, 0x0D, 0x53
RTHROTTLED, RMSGQFUL, RSYSERR = 0x58, 0x14, 0x08
AUTH_STATUSES = {RINVPASWD, RINVSYSID, RBINDFAIL, RINVSYSTYP}
THROTTLE_STATUSES = {RTHROTTLED, RMSGQFUL}
PERMANENT_STATUSES = {
    0x01: "message length is invalid",
    0x0A: "source address is invalid",
    0x0B: "destination address is invalid",
    0x33: "number of destinations is invalid",
    0x48: "source address TON is invalid",
    0x49: "source address NPI is invalid",
    0x50: "destination address TON is invalid",
    0x51: "destination address NPI is invalid",
    0x61: "scheduled delivery time is invalid",
    0x62: "validity period is invalid",
}


def status_of(exc: BaseException) -> int | None:
    """The command_status an smpp34 error names in its text as '(0x..)', if any."""
    match = re.search(r"\(0x([0-9A-Fa-f]+)\)", str(exc))
    return int(match.group(1), 16) if match else None


def submit_outcome(
    command_status: int, message_id: str | None, throttle_backoff: float
) -> str | ProviderError:
    """A submit_sm_resp as the SMSC's message id, or the error it means."""
    if command_status == 0 and message_id:
        return message_id
    code = f"0x{command_status:02X}"
    if command_status in THROTTLE_STATUSES:
        what = "is throttling us" if command_status == RTHROTTLED else "has a full queue"
        return RateLimitedError(
            f"The SMSC {what} ({code}).", code=code, retry_after=throttle_backoff
        )
    if command_status in PERMANENT_STATUSES:
        return PermanentError(
            f"The SMSC refused the message: {PERMANENT_STATUSES[command_status]} ({code}).",
            code=code,
        )
    if command_status == RSYSERR:
        return TemporaryError(
            f"The SMSC had a system error ({code}) and did not take the message.",
            code=code,
            not_taken=True,
            connection_level=True,
        )
    if command_status == 0:
        return TemporaryError("The SMSC accepted but gave no message_id.", code=code)
    return TemporaryError(f"The SMSC refused submit_sm with status {code}.", code=code)


def submit_timeout(timeout: float) -> TemporaryError:
    """A submit_sm left unanswered for `timeout` seconds: worth sending again.

    The SMSC may have taken the message, so this is ambiguous.
    """
    return TemporaryError(
        f"No submit_sm answer from the SMSC within {timeout:g} s; it may have taken the message.",
        code="timeout",
        connection_level=True,
    )


def session_failure(exc: BaseException) -> TemporaryError:
    """The session broke while a submit_sm was out: worth sending again after the rebind."""
    status = status_of(exc)
    return TemporaryError(
        f"The SMPP session failed during submit_sm: {exc}",
        code=f"0x{status:02X}" if status is not None else "session",
        connection_level=True,
    )


def bind_failure(exc: BaseException, where: str, timeout: float) -> ProviderError:
    """Why a bind to the SMSC at `where` failed, phrased for the admin who has to fix it."""
    status = status_of(exc)
    if status in AUTH_STATUSES:
        return AuthenticationError(
            f"The SMSC at {where} refused the bind ({exc}): check system ID, "
            "password and system type in the SMPP settings.",
            code=f"0x{status:02X}",
        )
    if isinstance(exc, TimeoutError):
        return TemporaryError(
            f"No bind answer from the SMSC at {where} within {timeout:g} s.",
            code="timeout",
            not_taken=True,
            connection_level=True,
        )
    hint = "host, port and TLS"
    if "bind" in str(exc).lower():  # connected, but the bind was not answered as expected
        hint = "system ID, password and system type (and host, port and TLS)"
    return TemporaryError(
        f"Cannot bind to the SMSC at {where}: {exc}. Check {hint}.",
        code=f"0x{status:02X}" if status is not None else "connect",
        not_taken=True,
        connection_level=True,
    )


def bind_transmitter_pdu(system_id: str, password: str, system_type: str) -> bytes:
    """A whole bind_transmitter PDU (sequence 1, interface version 3.4, no address range)."""
    body = b"".join(
        [
            system_id.encode("latin-1", "replace") + b"\0",
            password.encode("latin-1", "replace") + b"\0",
            system_type.encode("latin-1", "replace") + b"\0",
            bytes([0x34, 0, 0]),
            b"\0",
        ]
    )
    return struct.pack(">IIII", 16 + len(body), BIND_TRANSMITTER, 0, 1) + body


def bind_refusal(header: bytes) -> int | None:
    """The error status of a bind_transmitter_resp from its 16-byte header, or None."""
    _, command_id, status, _ = struct.unpack(">IIII", header)
    if command_id == BIND_TRANSMITTER | 0x80000000 and status != 0:
        return int(status)
    return None
