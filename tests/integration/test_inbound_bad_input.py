"""Bad inbound callbacks: a clear 4xx where the protocol allows, else a record marked invalid.

Never a crash, and never a valid SMS lost because of a bad one next to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from smsdesk.store.tables import inbound_messages
from tests.support.harness import Harness, running_service


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_service(tmp_path, max_body_bytes=1024 * 1024) as h:
        await h.configure(default_country_code="+47", inbound={"sms_endpoint": "HELP"})
        yield h


def url(h: Harness, module: str) -> str:
    return f"/webhooks/{module}/inbound/{h.service.settings.callback_secret()}"


def stored(h: Harness) -> list[Any]:
    with h.service.engine.connect() as conn:
        return list(conn.execute(sa.select(inbound_messages).order_by(inbound_messages.c.id)))


async def processed(h: Harness, count: int) -> list[Any]:
    await h.wait_until(
        lambda: len(rows := stored(h)) == count and all(r.state != "pending" for r in rows),
        f"{count} inbound SMS processed",
    )
    return stored(h)


def mo(message_id: str, sender: str, text: str) -> dict[str, Any]:
    return {"messageid": message_id, "originator": sender, "sno": "2030", "content": text}


async def post_json(h: Harness, module: str, body: bytes) -> Any:
    return await h.client.post(
        url(h, module), content=body, headers={"content-type": "application/json"}
    )


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"mo": "not a list"}', b"[1, 2]", b'{"mo": [{"originator": "+4791"}]}'],
    ids=["empty", "truncated", "not-a-list", "wrong-root", "no-message-id"],
)
async def test_a_malformed_callback_is_refused_with_the_reason(desk: Harness, body: bytes) -> None:
    response = await post_json(desk, "intelecom", body)
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert stored(desk) == []


async def test_a_body_over_the_size_limit_is_refused_before_it_is_read(desk: Harness) -> None:
    huge = orjson.dumps({"mo": [mo("big", "+4791234567", "x" * (10 * 1024 * 1024))]})
    response = await post_json(desk, "intelecom", huge)
    assert response.status_code == 413
    assert stored(desk) == []


async def test_a_body_in_the_wrong_charset_is_refused_not_garbled(desk: Harness) -> None:
    latin1 = '{"mo": [{"messageid": "1", "originator": "+4791234567", "content": "HELP Ærlig"}]}'
    response = await post_json(desk, "intelecom", latin1.encode("latin-1"))
    assert response.status_code == 400
    assert stored(desk) == []


async def test_an_unanswerable_sender_is_kept_as_invalid_and_its_batch_neighbours_processed(
    desk: Harness,
) -> None:
    body = orjson.dumps(
        {
            "mo": [
                mo("a", "+4791234567", "HELP first"),
                mo("b", "Vodafone", "HELP your bill"),
                mo("c", "12", "HELP short"),
                mo("d", "+4791234568", "HELP second"),
            ]
        }
    )
    response = await post_json(desk, "intelecom", body)
    assert response.status_code == 200, response.text
    rows = {r.provider_message_id: r for r in await processed(desk, 4)}
    assert rows["a"].state == rows["d"].state == "request"
    assert rows["b"].state == rows["c"].state == "invalid"
    assert "Vodafone" in rows["b"].reason


async def test_unicode_and_long_texts_are_kept_whole(desk: Harness) -> None:
    text = "HELP " + "Ærlig talt, 😀 " * 100
    body = orjson.dumps({"mo": [mo("u", "+4791234567", text)]})
    assert (await post_json(desk, "intelecom", body)).status_code == 200
    (row,) = await processed(desk, 1)
    assert row.body == text and row.content == text[5:].strip()


async def test_a_repeated_batch_is_stored_once(desk: Harness) -> None:
    body = orjson.dumps(
        {"mo": [mo("r1", "+4791234567", "HELP one"), mo("r2", "+4791234567", "HELP two")]}
    )
    for _ in range(3):
        assert (await post_json(desk, "intelecom", body)).status_code == 200
    rows = await processed(desk, 2)
    assert len({r.request_id for r in rows}) == 1


async def test_a_forged_inbound_callback_changes_nothing(desk: Harness) -> None:
    body = orjson.dumps({"mo": [mo("f", "+4791234567", "HELP x")]})
    response = await desk.client.post(
        "/webhooks/intelecom/inbound/not-the-secret",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 403
    assert stored(desk) == []
