"""POST /api/v1/messages answers the same whether the lean path (web/api/fast_send.py) or the
FastAPI route takes the request: every success and every refusal, in the caller's language."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from smsdesk.store.tables import messages
from tests.support.harness import Harness

NL, BE = "+31612345678", "+32470123456"
LEAN = "application/json"  # a plain request: the lean path answers it
ROUTE = "application/json; charset=utf-8"  # not plain: the FastAPI route answers it


async def send(h: Harness, body: bytes, content_type: str, **headers: str) -> httpx.Response:
    return await h.client.post(
        "/api/v1/messages",
        content=body,
        headers={**h.headers, "Content-Type": content_type, **headers},
    )


async def both(h: Harness, body: Any, **headers: str) -> tuple[httpx.Response, httpx.Response]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return await send(h, raw, LEAN, **headers), await send(h, raw, ROUTE, **headers)


def without_id(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ("id", "created_at")}


async def test_an_accepted_sms_gets_the_same_answer_both_ways(harness: Harness) -> None:
    """201 with the same fields and headers; both messages are stored and delivered."""
    await harness.post("/api/v1/messages", {"to": NL, "text": "warm the key cache"})
    lean, route = await both(harness, {"to": NL, "text": "Your order shipped", "priority": 1})
    assert (lean.status_code, route.status_code) == (201, 201), (lean.text, route.text)
    assert without_id(lean.json()) == without_id(route.json())
    assert lean.headers["content-type"] == route.headers["content-type"] == "application/json"
    for answer in (lean, route):
        await harness.wait_for(answer.json()["id"], "delivered")


async def test_plain_requests_take_the_lean_path_and_others_the_route(harness: Harness) -> None:
    await harness.post("/api/v1/messages", {"to": NL, "text": "warm the key cache"})
    lean_path = harness.app.fast_send
    assert lean_path is not None
    before = lean_path.answered
    lean, route = await both(harness, {"to": NL, "text": "Your order shipped"})
    assert (lean.status_code, route.status_code) == (201, 201)
    assert lean_path.answered == before + 1
    keyed = await send(
        harness, b'{"to": "+31612345678", "text": "hi"}', LEAN, **{"Idempotency-Key": "k1"}
    )
    assert keyed.status_code == 201 and lean_path.answered == before + 1


async def test_bodies_at_the_edges_of_json_get_the_same_answer_both_ways(
    harness: Harness,
) -> None:
    """Values JSON parsers treat differently (NaN, booleans and strings for numbers, a
    duplicated field) are accepted or refused alike."""
    await harness.post("/api/v1/messages", {"to": NL, "text": "warm the key cache"})
    bodies = [
        b'{"to": "+31612345678", "text": "hi", "priority": NaN}',
        b'{"to": "+31612345678", "text": "hi", "priority": "2"}',
        b'{"to": "+31612345678", "text": "hi", "priority": true}',
        b'{"to": "+31612345678", "text": "hi", "priority": 2.0}',
        b'{"to": "+31612345678", "text": "one", "text": "two"}',
        b'{"to": "+31612345678", "text": "hi"} ',
        rb'{"to": "+31612345678", "text": "caf\u00e9"}',
    ]
    for body in bodies:
        lean, route = await both(harness, body)
        assert lean.status_code == route.status_code, (body, lean.text, route.text)
        if lean.status_code == 201:
            assert without_id(lean.json()) == without_id(route.json()), body
        else:
            assert lean.json() == route.json(), body


async def test_refusals_are_answered_exactly_as_the_route_answers_them(harness: Harness) -> None:
    """Invalid numbers, texts, fields and JSON, and refusals in Dutch: the same status and body."""
    await harness.post("/api/v1/messages", {"to": NL, "text": "warm the key cache"})
    await harness.post("/api/v1/opt-outs", {"number": "+31612345679"})
    requests: list[Any] = [
        {"to": "+316123", "text": "hi"},
        {"to": NL, "text": ""},
        {"to": NL, "text": "hi", "colour": "blue"},
        {"to": NL, "text": "hi", "priority": 7},
        {"to": "+31612345679", "text": "hi"},
        {"to": NL, "template": "no such template"},
        {"to": NL, "text": "hi", "transactional": "maybe"},
        [{"to": NL, "text": "hi"}],
        b'{"to": "+31612345678", "text": ',
        b"",
    ]
    for body in requests:
        for language in ("en", "nl"):
            lean, route = await both(harness, body, **{"Accept-Language": language})
            assert lean.status_code == route.status_code and lean.status_code >= 400, body
            assert lean.json() == route.json(), body


async def test_a_refusal_while_storing_is_answered_by_the_same_handler(harness: Harness) -> None:
    """A daily cap refuses in the insert transaction: the same 422, in the same language, and
    nothing stored."""
    await harness.post("/api/v1/messages", {"to": NL, "text": "warm the key cache"})
    await harness.configure(spend={"daily_total": 1})
    for language in ("en", "nl"):
        lean, route = await both(harness, {"to": NL, "text": "hi"}, **{"Accept-Language": language})
        assert (lean.status_code, route.status_code) == (422, 422), lean.text
        assert lean.json() == route.json()
        assert "daily_total" in lean.json()["error"]["message"]
    with harness.service.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one()
    assert stored == 1


async def test_requests_without_a_known_key_are_refused_alike(harness: Harness) -> None:
    """A missing or wrong key: the same 401 and WWW-Authenticate either way."""
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer nope"}):
        raw = orjson.dumps({"to": NL, "text": "hi"})
        lean = await harness.client.post(
            "/api/v1/messages", content=raw, headers={"Content-Type": LEAN, **headers}
        )
        route = await harness.client.post(
            "/api/v1/messages", content=raw, headers={"Content-Type": ROUTE, **headers}
        )
        assert (lean.status_code, route.status_code) == (401, 401)
        assert lean.json() == route.json()
        assert lean.headers["www-authenticate"] == route.headers["www-authenticate"] == "Bearer"


async def test_a_body_over_the_limit_is_still_refused_before_it_is_read(harness: Harness) -> None:
    """The size limit wraps the lean path too: 413, nothing stored."""
    limit = harness.service.config.max_body_bytes
    body = orjson.dumps({"to": NL, "text": "x" * (limit + 1)})
    answer = await send(harness, body, LEAN)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "body_too_large"


async def test_the_openapi_document_still_describes_the_endpoint(harness: Harness) -> None:
    """Clients generated from /openapi.json still know POST /api/v1/messages and its body."""
    document = (await harness.client.get("/openapi.json")).json()
    post = document["paths"]["/api/v1/messages"]["post"]
    assert post["summary"] == "Send one SMS" and "201" in post["responses"]
    assert "SendMessage" in orjson.dumps(post["requestBody"]).decode()
