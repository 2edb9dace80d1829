"""Sending through the REST API, end to end on the simulator."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import sqlalchemy as sa

from smsdesk.store.tables import messages
from tests.support.harness import Harness

TO = "+31612345678"


def stored_count(h: Harness) -> int:
    with h.service.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one()


async def test_one_sms_is_delivered_with_a_full_timeline(any_db_harness: Harness) -> None:
    """POST returns an id at once; the message then goes queued → sending → sent → delivered."""
    h = any_db_harness
    response = await h.post("/api/v1/messages", {"to": TO, "text": "Your request was answered"})
    assert response.status_code == 201
    accepted = response.json()
    assert accepted["status"] == "queued" and accepted["to"] == TO
    body = await h.wait_for(accepted["id"], "delivered")
    assert [e["status"] for e in body["timeline"]] == ["queued", "sending", "sent", "delivered"]
    assert body["provider_message_id"].startswith("SIM")
    assert body["timeline"][-1]["code"] == "DELIVRD:000"
    assert body["timeline"][-1]["source"] == "report"


async def test_number_without_country_code_gets_the_default(harness: Harness) -> None:
    """With default country code +31, '06 12345678' is sent to +31612345678."""
    await harness.configure(default_country_code="+31")
    response = await harness.post("/api/v1/messages", {"to": "06 12345678", "text": "hi"})
    assert response.status_code == 201 and response.json()["to"] == TO


async def test_unicode_and_long_texts_are_counted_not_truncated(harness: Harness) -> None:
    """A 200-character GSM text is 2 segments; an emoji text is UCS-2; the text is kept whole."""
    long_text = "x" * 200
    r = (await harness.post("/api/v1/messages", {"to": TO, "text": long_text})).json()
    assert (r["encoding"], r["segments"]) == ("gsm7", 2)
    stored = (await harness.get(f"/api/v1/messages/{r['id']}")).json()
    assert stored["text"] == long_text
    r = (await harness.post("/api/v1/messages", {"to": TO, "text": "Bedankt 😀"})).json()
    assert r["encoding"] == "ucs2"


BAD_REQUESTS = [
    ({"to": "+316123", "text": "hi"}, 422, "to", "too short"),
    ({"to": "+3161234", "text": "hi"}, 422, "to", "check the digits"),
    ({"to": "+31201234567", "text": "hi"}, 422, "to", "landline"),
    ({"to": "hello", "text": "hi"}, 422, "to", "not part of a phone number"),
    ({"to": TO, "text": ""}, 422, "text", "empty"),
    ({"to": TO, "text": "x" * 1700}, 422, "text", "at most 10"),
    ({"to": TO, "text": "hi", "sender": "A very long sender"}, 422, "sender", "at most 11"),
    ({"to": TO, "text": "hi", "sender": "Caf\u00e9!"}, 422, "sender", "do not accept"),
    ({"to": TO, "text": "hi", "module": "nokia"}, 422, "module", "no module 'nokia'"),
    ({"to": TO, "text": "hi", "priority": 4}, 422, "priority", "use 1 (fastest), 2 or 3"),
    ({"to": TO}, 422, "text", "required"),
    ({"to": TO, "text": "hi", "colour": "red"}, 422, "colour", "Extra inputs"),
]


async def test_bad_input_is_refused_with_a_reason_and_nothing_stored(harness: Harness) -> None:
    """Each kind of bad input gets a 4xx naming the field and the problem; nothing is stored."""
    for body, status, field, phrase in BAD_REQUESTS:
        response = await harness.post("/api/v1/messages", body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert any(f["field"] == field for f in error["fields"]), (body, error)
        assert phrase.lower() in error["message"].lower(), (body, error)
    assert stored_count(harness) == 0


async def test_malformed_and_oversized_bodies_are_refused(harness: Harness) -> None:
    """Broken JSON is a 400 saying so; a 10 MB body is a 413 before it is read."""
    headers = {**harness.headers, "Content-Type": "application/json"}
    r = await harness.client.post("/api/v1/messages", content=b'{"to": ', headers=headers)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = await harness.client.post("/api/v1/messages", content=b"x" * 10_000_000, headers=headers)
    assert r.status_code == 413 and "larger than" in r.json()["error"]["message"]
    assert stored_count(harness) == 0


async def test_api_key_is_required_and_checked(harness: Harness) -> None:
    """No key → 401 explaining how to send one; a wrong or revoked key → 401; health is open."""
    body = {"to": TO, "text": "hi"}
    r = await harness.client.post("/api/v1/messages", json=body)
    assert r.status_code == 401 and "Bearer" in r.json()["error"]["message"]
    r = await harness.client.post(
        "/api/v1/messages", json=body, headers={"Authorization": "Bearer sd_nope_nope"}
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    _, plain = harness.service.keys.create("soon revoked")
    harness.service.keys.revoke(plain.split("_")[1])
    r = await harness.client.post(
        "/api/v1/messages", json=body, headers={"Authorization": f"Bearer {plain}"}
    )
    assert r.status_code == 401
    assert (await harness.client.get("/healthz")).json()["status"] == "ok"
    assert stored_count(harness) == 0


async def test_sender_role_cannot_touch_the_configuration(harness: Harness) -> None:
    """A sender key may send but gets 403 on the SMS configuration."""
    _, plain = harness.service.keys.create("app", "sender")
    headers = {"Authorization": f"Bearer {plain}"}
    r = await harness.client.get("/api/v1/settings", headers=headers)
    assert r.status_code == 403
    r = await harness.client.post(
        "/api/v1/messages", json={"to": TO, "text": "hi"}, headers=headers
    )
    assert r.status_code == 201


async def test_batch_gives_one_result_per_message(harness: Harness) -> None:
    """1,000 recipients in one request: valid ones accepted, invalid ones rejected with reasons."""
    numbers = [f"+3161{i:07d}" for i in range(998)] + ["+3161234", "nonsense"]
    r = await harness.post("/api/v1/messages/batch", {"to": numbers, "text": "Maintenance"})
    assert r.status_code == 200
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (998, 2)
    assert [x["index"] for x in body["results"]] == list(range(1000))
    assert body["results"][998]["error"]["fields"][0]["field"] == "to"
    assert stored_count(harness) == 998
    last = body["results"][997]["message"]["id"]
    await harness.wait_for(last, "delivered")


async def test_batch_over_1000_is_refused(harness: Harness) -> None:
    """More than 1,000 messages in one request is a 422 and stores nothing."""
    r = await harness.post("/api/v1/messages/batch", {"to": [TO] * 1001, "text": "too many"})
    assert r.status_code == 422 and stored_count(harness) == 0


async def test_idempotency_key_makes_retries_safe(harness: Harness) -> None:
    """The same request with the same Idempotency-Key stores one message and answers the same."""
    headers = {**harness.headers, "Idempotency-Key": "order-42"}
    body = {"to": TO, "text": "Your order shipped"}
    first = await harness.client.post("/api/v1/messages", json=body, headers=headers)
    again = await harness.client.post("/api/v1/messages", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await harness.client.post(
        "/api/v1/messages", json={**body, "text": "other"}, headers=headers
    )
    assert other.status_code == 422 and "different request" in other.json()["error"]["message"]
    assert stored_count(harness) == 1


async def test_listing_filters_and_pages(harness: Harness) -> None:
    """Messages can be listed by recipient and status, page by page."""
    ids = [
        (await harness.post("/api/v1/messages", {"to": f"+3161{i:07d}", "text": "x"})).json()["id"]
        for i in range(5)
    ]
    page = (await harness.get("/api/v1/messages", params={"limit": 2})).json()
    assert [m["id"] for m in page["messages"]] == ids[::-1][:2] and page["next_cursor"]
    nxt = (
        await harness.get("/api/v1/messages", params={"limit": 2, "cursor": page["next_cursor"]})
    ).json()
    assert [m["id"] for m in nxt["messages"]] == ids[::-1][2:4]
    one = (await harness.get("/api/v1/messages", params={"to": "+31610000003"})).json()
    assert [m["id"] for m in one["messages"]] == [ids[3]]
    bad = await harness.get("/api/v1/messages", params={"status": "lost"})
    assert bad.status_code == 422


async def test_cancel_and_resend(harness: Harness) -> None:
    """A scheduled message can be cancelled; a cancelled one can be resent and is delivered."""
    tomorrow = datetime.fromtimestamp(time.time() + 86400, UTC).isoformat()
    r = await harness.post(
        "/api/v1/messages", {"to": TO, "text": "later", "scheduled_at": tomorrow}
    )
    mid = r.json()["id"]
    assert r.json()["scheduled_at"][:10] == tomorrow[:10]
    cancelled = await harness.post(f"/api/v1/messages/{mid}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    again = await harness.post(f"/api/v1/messages/{mid}/cancel")
    assert again.status_code == 422 and "Only queued" in again.json()["error"]["message"]
    assert (await harness.post(f"/api/v1/messages/{mid}/resend")).json()["status"] == "queued"
    await harness.wait_for(mid, "delivered")
    missing = await harness.get("/api/v1/messages/NOPE")
    assert missing.status_code == 404
