"""Signatures on outgoing webhooks, and the check a receiver runs on them.

Every delivery carries:

    X-Smsdesk-Timestamp: 1767225600                    (Unix seconds when it was sent)
    X-Smsdesk-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>
    X-Smsdesk-Event: message.status
    X-Smsdesk-Delivery: <delivery id; the event id is in the body>

The timestamp is part of what is signed, so a receiver that refuses timestamps older than a few
minutes cannot be fooled by a recorded request played again later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Smsdesk-Timestamp"
SIGNATURE_HEADER = "X-Smsdesk-Signature"
EVENT_HEADER = "X-Smsdesk-Event"
DELIVERY_HEADER = "X-Smsdesk-Delivery"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300.0


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def compute_signature(secret: str, timestamp: int, body: bytes | str) -> str:
    """The hex HMAC-SHA256 of `{timestamp}.{body}` under `secret`."""
    signed = str(timestamp).encode() + b"." + _as_bytes(body)
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_headers(
    secret: str, body: bytes | str, *, event_type: str, delivery_id: str, now: float
) -> dict[str, str]:
    """The headers of one delivery attempt, signed at `now`."""
    timestamp = int(now)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SCHEME}={compute_signature(secret, timestamp, body)}",
        EVENT_HEADER: event_type,
        DELIVERY_HEADER: delivery_id,
    }


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """Whether `body` and `headers` were signed with `secret` less than `tolerance` s ago.

    `headers` may use any case. Several `v1=` values separated by commas are accepted (any one
    matching is enough). The comparison takes the same time whatever the signature.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        timestamp = int(lowered.get(TIMESTAMP_HEADER.lower(), ""))
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = compute_signature(secret, timestamp, body)
    matched = False
    for part in lowered.get(SIGNATURE_HEADER.lower(), "").split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == SCHEME and hmac.compare_digest(value.encode(), expected.encode()):
            matched = True
    return matched
