"""Outgoing webhooks: signatures a receiver can check, and when failed deliveries are retried."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest

from smsdesk.webhooks_out.retry import DeliveryPolicy, backoff, next_attempt_at
from smsdesk.webhooks_out.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    compute_signature,
    sign_headers,
    verify_signature,
)

SECRET = "whsec_test-secret-of-enough-length"
BODY = b'{"id":"01J","type":"message.status","data":{"status":"delivered"}}'
NOW = 1_800_000_000.0


def signed() -> dict[str, str]:
    return sign_headers(SECRET, BODY, event_type="message.status", delivery_id="01D", now=NOW)


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    """The documented recipe (HMAC-SHA256 over '<timestamp>.<body>', hex) reproduces it."""
    headers = signed()
    expected = hmac.new(SECRET.encode(), b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert headers[TIMESTAMP_HEADER] == "1800000000"
    assert headers[SIGNATURE_HEADER] == f"v1={expected}"
    assert headers["X-Smsdesk-Event"] == "message.status"
    assert headers["X-Smsdesk-Delivery"] == "01D"


def test_authentic_delivery_verifies_whatever_the_header_case() -> None:
    headers = signed()
    assert verify_signature(SECRET, headers, BODY, now=NOW)
    assert verify_signature(SECRET, {k.lower(): v for k, v in headers.items()}, BODY, now=NOW)
    assert verify_signature(SECRET, headers, BODY.decode(), now=NOW + 299)


@pytest.mark.parametrize(
    "change",
    ["altered body", "wrong secret", "forged signature", "no signature", "bad timestamp"],
)
def test_forged_or_altered_delivery_fails(change: str) -> None:
    """Any change to the body, secret, signature or timestamp makes the check fail."""
    headers, body, secret = signed(), BODY, SECRET
    if change == "altered body":
        body = BODY.replace(b"delivered", b"failed")
    elif change == "wrong secret":
        secret = "whsec_another-secret-entirely"
    elif change == "forged signature":
        headers[SIGNATURE_HEADER] = "v1=" + compute_signature("guess", int(NOW), BODY)
    elif change == "no signature":
        del headers[SIGNATURE_HEADER]
    else:
        headers[TIMESTAMP_HEADER] = "yesterday"
    assert not verify_signature(secret, headers, body, now=NOW)


def test_replayed_delivery_outside_the_tolerance_fails() -> None:
    """A recorded request played again minutes later is refused; the timestamp is signed."""
    headers = signed()
    assert not verify_signature(SECRET, headers, BODY, now=NOW + 301)
    assert not verify_signature(SECRET, headers, BODY, now=NOW - 301)
    assert verify_signature(SECRET, headers, BODY, now=NOW + 3000, tolerance=3600)
    moved = {**headers, TIMESTAMP_HEADER: str(int(NOW) + 600)}
    assert not verify_signature(SECRET, moved, BODY, now=NOW + 600)


def test_any_of_several_signatures_may_match() -> None:
    headers = signed()
    headers[SIGNATURE_HEADER] = "v1=00ff, " + headers[SIGNATURE_HEADER]
    assert verify_signature(SECRET, headers, BODY, now=NOW)


def test_backoff_doubles_from_ten_seconds_up_to_an_hour_with_jitter() -> None:
    policy, rng = DeliveryPolicy(), random.Random(7)
    for attempts, base in [(1, 10), (2, 20), (3, 40), (9, 2560), (10, 3600), (30, 3600)]:
        delay = backoff(attempts, policy, rng)
        assert base * 0.8 <= delay <= base * 1.2, (attempts, delay)


def test_delivery_is_dead_once_24_hours_old_with_a_last_try_at_the_deadline() -> None:
    policy, rng, created = DeliveryPolicy(), random.Random(1), 1000.0
    day = 24 * 3600
    early = next_attempt_at(1, created + 5, created, policy, rng)
    assert early is not None and created + 13 <= early <= created + 17
    assert next_attempt_at(20, created + day - 60, created, policy, rng) == created + day
    assert next_attempt_at(21, created + day, created, policy, rng) is None
