"""The messaging-agent operations over REST (/api/v1/agent), end to end on the simulator."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.openapi.utils import get_openapi

from smsdesk.store.tables import messages
from smsdesk.web.api import agent
from tests.support.harness import Harness

TO = "+31612345678"


def item(to: str, content: str = "Hello", **fields: Any) -> dict[str, Any]:
    return {"to": to, "content": content, **fields}


async def send(h: Harness, *items: dict[str, Any], plugin: str = "simulator") -> list[Any]:
    response = await h.post("/api/v1/agent/send", {"plugin": plugin, "messages": list(items)})
    assert response.status_code == 200, response.text
    answer: list[Any] = response.json()
    return answer


def row(h: Harness, message_id: str) -> Any:
    with h.service.engine.connect() as conn:
        return conn.execute(sa.select(messages).where(messages.c.id == message_id)).one()


async def test_plugins_lists_the_modules_that_can_send(harness: Harness) -> None:
    """GetPlugins: every module that can send, with its formats and the configured default."""
    response = await harness.get("/api/v1/agent/plugins")
    assert response.status_code == 200
    plugins = {p["name"]: p for p in response.json()}
    assert plugins["simulator"]["default"] is True
    assert plugins["simulator"]["supported_formats"] == ["sms/160"]
    assert plugins["twilio"]["supports_status_query"] is True
    assert plugins["linkmobility"]["supports_status_query"] is False
    assert "original_intelecom" not in plugins or plugins["original_intelecom"]["title"]


async def test_send_answers_one_status_per_message_in_order(harness: Harness) -> None:
    """SendMessages: the statuses come back in the order of the messages, each queued."""
    numbers = [f"+3161234567{i}" for i in range(5)]
    answer = await send(harness, *(item(n, f"Message {i}") for i, n in enumerate(numbers)))

    assert [a["status"] for a in answer] == ["queued"] * 5
    for number, status in zip(numbers, answer, strict=True):
        stored = row(harness, status["messaging_id"])
        assert stored.recipient == number
    await harness.wait_for(answer[-1]["messaging_id"], "delivered")


async def test_an_invalid_number_fails_alone(harness: Harness) -> None:
    """One bad number among good ones: that one failed with the reason, the rest queued."""
    answer = await send(
        harness, item(TO, "first"), item("+316123", "bad"), item("+31612345679", "third")
    )

    assert [a["status"] for a in answer] == ["queued", "failed", "queued"]
    assert answer[1]["messaging_id"] is None
    assert answer[1]["status_description"].startswith("to:")
    assert "too short" in answer[1]["status_description"]
    assert row(harness, answer[2]["messaging_id"]).body == "third"


async def test_a_format_other_than_sms_fails(harness: Harness) -> None:
    """Only SMS is sent: an e-mail format is refused with the reason."""
    answer = await send(harness, item(TO, format="smtp/rfc822"), item(TO, format="sms/160"))
    assert [a["status"] for a in answer] == ["failed", "queued"]
    assert "format" in answer[0]["status_description"]


async def test_an_unknown_plugin_is_refused(harness: Harness) -> None:
    """A plugin name we do not have is an error of the whole request, naming the field."""
    response = await harness.post("/api/v1/agent/send", {"plugin": "nokia", "messages": [item(TO)]})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "plugin"


async def test_sender_and_session_key_are_stored(harness: Harness) -> None:
    """`from` becomes the sender and the suggested session key the message's session key."""
    [answer] = await send(harness, item(TO, **{"from": "Helpdesk", "suggested_session_key": "S1"}))
    stored = row(harness, answer["messaging_id"])
    assert (stored.sender, stored.session_key) == ("Helpdesk", "S1")


async def test_a_reply_to_a_request_message_joins_its_request(harness: Harness) -> None:
    """A parent with a request gives the new message its request and session key."""
    [parent] = await send(harness, item(TO, "Your request was received"))
    with harness.service.engine.begin() as conn:
        conn.execute(
            messages.update()
            .where(messages.c.id == parent["messaging_id"])
            .values(request_id="01REQUEST00000000000000000", session_key="SESSION-7")
        )

    [reply, other] = await send(
        harness,
        item(TO, "Follow-up", parent_messaging_id=parent["messaging_id"]),
        item(TO, "Unrelated", parent_messaging_id="no-such-message"),
    )

    threaded = row(harness, reply["messaging_id"])
    assert (threaded.request_id, threaded.session_key) == (
        "01REQUEST00000000000000000",
        "SESSION-7",
    )
    alone = row(harness, other["messaging_id"])
    assert (alone.request_id, alone.session_key) == (None, None)


async def test_a_late_sent_does_not_overwrite_delivered(harness: Harness) -> None:
    """SetDeliveryStatus is applied like a report: 'sent' after 'delivered' is stale."""
    [answer] = await send(harness, item(TO))
    delivered = await harness.wait_for(answer["messaging_id"], "delivered")
    external = delivered["provider_message_id"]

    response = await harness.post(
        "/api/v1/agent/delivery-status",
        {"plugin": "simulator", "external_message_id": external, "status": "sent"},
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "outcome": "stale",
        "messaging_id": answer["messaging_id"],
        "status": "delivered",
    }
    body = (await harness.get(f"/api/v1/messages/{answer['messaging_id']}")).json()
    assert body["status"] == "delivered"
    assert body["timeline"][-1]["source"] == "agent"
    assert body["timeline"][-1]["applied"] is False


async def test_set_delivery_status_applies_a_final_status_to_a_sent_message(
    harness: Harness,
) -> None:
    """A sent message whose report was lost becomes undelivered with the given description."""
    await harness.configure(module_settings={"simulator": {"lost_report_rate": 1.0}})
    await harness.idle_scans(2)
    [answer] = await send(harness, item(TO))
    sent = await harness.wait_for(answer["messaging_id"], "sent")

    response = await harness.post(
        "/api/v1/agent/delivery-status",
        {
            "plugin": "simulator",
            "external_message_id": sent["provider_message_id"],
            "status": "undelivered",
            "status_description": "phone switched off",
        },
    )

    assert response.json()["outcome"] == "applied"
    [status] = (
        await harness.post(
            "/api/v1/agent/delivery-status/query", {"messaging_ids": [answer["messaging_id"]]}
        )
    ).json()
    assert status["status"] == "undelivered"
    assert "phone switched off" in status["status_description"]


async def test_set_delivery_status_for_an_unknown_id_is_kept_unmatched(harness: Harness) -> None:
    """No message has this provider id: the status is kept for later and the answer says so."""
    response = await harness.post(
        "/api/v1/agent/delivery-status",
        {"plugin": "simulator", "external_message_id": "SIM-nobody", "status": "delivered"},
    )
    assert response.json() == {"outcome": "unmatched", "messaging_id": None, "status": None}


async def test_set_delivery_status_needs_an_admin_key_and_a_status_name(harness: Harness) -> None:
    """Only admin keys may set statuses, and only our status names are accepted."""
    _, sender_key = harness.service.keys.create("sender", "sender")
    body = {"plugin": "simulator", "external_message_id": "X", "status": "delivered"}
    response = await harness.client.post(
        "/api/v1/agent/delivery-status",
        json=body,
        headers={"Authorization": f"Bearer {sender_key}"},
    )
    assert response.status_code == 403
    response = await harness.post("/api/v1/agent/delivery-status", {**body, "status": 2})
    assert response.status_code == 422


async def test_query_gives_one_status_per_id_and_unknown_for_ids_we_lack(
    harness: Harness,
) -> None:
    """GetDeliveryStatus: in the order asked, with 'unknown' for an id we do not have."""
    [answer] = await send(harness, item(TO))
    message_id = answer["messaging_id"]
    await harness.wait_for(message_id, "delivered")

    response = await harness.post(
        "/api/v1/agent/delivery-status/query",
        {"messaging_ids": ["nope", message_id, "nope"]},
    )

    assert response.status_code == 200
    first, known, last = response.json()
    unknown = {
        "messaging_id": "nope",
        "status": "unknown",
        "status_description": "no message has this id",
    }
    assert first == unknown and last == unknown
    assert (known["messaging_id"], known["status"]) == (message_id, "delivered")
    assert known["status_description"].startswith("delivered to the phone")


def test_the_status_names_are_documented_in_the_openapi_schema() -> None:
    """Statuses are names, listed as an enum, not undocumented integers."""
    schema = get_openapi(title="agent", version="1", routes=agent.router.routes)
    out = schema["components"]["schemas"]["DeliveryStatusOut"]["properties"]["status"]
    assert "delivered" in out["enum"] and "unknown" in out["enum"]
    assert "final" in out["description"]
