"""Provider callbacks (authentic, forged, malformed), inbound storage, health and metrics."""

from __future__ import annotations

import json

import sqlalchemy as sa

from smsdesk.store.tables import inbound_messages
from tests.support.harness import BASE_URL, Harness

TO = "+31612345678"


async def sent_message(h: Harness) -> dict[str, object]:
    """A message the simulator accepted but has not reported on (reports switched off)."""
    await h.configure(module_settings={"simulator": {"delivery_report": False}})
    response = await h.post("/api/v1/messages", {"to": TO, "text": "hello"})
    return await h.wait_for(response.json()["id"], "sent")


def status_url(h: Harness, secret: str | None = None) -> str:
    return f"/webhooks/simulator/status/{secret or h.service.settings.callback_secret()}"


def report(provider_id: object, stat: str = "DELIVRD") -> bytes:
    return json.dumps({"reports": [{"id": provider_id, "stat": stat, "err": "000"}]}).encode()


async def test_authentic_report_marks_the_message_delivered(harness: Harness) -> None:
    message = await sent_message(harness)
    response = await harness.client.post(
        status_url(harness), content=report(message["provider_message_id"])
    )
    assert response.status_code == 200
    body = await harness.wait_for(str(message["id"]), "delivered")
    assert body["status_code"] == "DELIVRD:000"


async def test_forged_report_is_refused_and_changes_nothing(harness: Harness) -> None:
    """A callback with a wrong secret gets 403, a malformed one 400; the message stays sent."""
    message = await sent_message(harness)
    forged = await harness.client.post(
        status_url(harness, "guessed-secret"), content=report(message["provider_message_id"])
    )
    assert forged.status_code == 403
    assert "not valid for this installation" in forged.json()["error"]["message"]
    for body in (b"{not json", b'{"reports": [{"stat": "DELIVRD"}]}', b'{"reports": 5}'):
        malformed = await harness.client.post(status_url(harness), content=body)
        assert malformed.status_code == 400, body
        assert malformed.json()["error"]["code"] == "malformed_callback"
    unknown_status = report(message["provider_message_id"], stat="HAPPY")
    assert (
        await harness.client.post(status_url(harness), content=unknown_status)
    ).status_code == 400
    after = (await harness.get(f"/api/v1/messages/{message['id']}")).json()
    assert after["status"] == "sent"
    assert [e["status"] for e in after["timeline"]] == ["queued", "sending", "sent"]


async def test_callback_for_an_unknown_module_is_not_found(harness: Harness) -> None:
    secret = harness.service.settings.callback_secret()
    response = await harness.client.post(f"/webhooks/nokia/status/{secret}", content=b"{}")
    assert response.status_code == 404


async def test_undelivered_report_keeps_the_provider_code(harness: Harness) -> None:
    message = await sent_message(harness)
    undelivered = report(message["provider_message_id"], stat="UNDELIV")
    await harness.client.post(status_url(harness), content=undelivered)
    body = await harness.wait_for(str(message["id"]), "undelivered")
    assert body["status_code"] == "UNDELIV:000"
    # A late "delivered" for the same message does not overwrite the final status.
    await harness.client.post(status_url(harness), content=report(message["provider_message_id"]))
    again = (await harness.get(f"/api/v1/messages/{message['id']}")).json()
    assert again["status"] == "undelivered"
    assert again["timeline"][-1]["applied"] is False


async def test_inbound_sms_is_stored_once(harness: Harness) -> None:
    """An inbound SMS is kept; the provider retrying the same callback does not store it twice."""
    url = f"/webhooks/simulator/inbound/{harness.service.settings.callback_secret()}"
    sms = json.dumps({"id": "MO-1", "from": TO, "to": "2525", "text": "HELP my order"})
    for _ in range(2):
        response = await harness.client.post(url, content=sms.encode())
        assert response.status_code == 200
    with harness.service.engine.connect() as conn:
        rows = conn.execute(sa.select(inbound_messages)).all()
    assert [(r.sender, r.body, r.provider_message_id) for r in rows] == [
        (TO, "HELP my order", "MO-1")
    ]
    forged = await harness.client.post("/webhooks/simulator/inbound/wrong", content=sms.encode())
    assert forged.status_code == 403


async def test_health_needs_no_key_and_reports_the_database(harness: Harness) -> None:
    response = await harness.client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["dispatcher"]) == ("ok", "ok", True)
    assert body["leads"] == ["reconcile", "webhook-retries", "inbound-recovery", "retention"]


async def test_metrics_count_messages_and_show_the_queue(harness: Harness) -> None:
    """Prometheus text with per-module outcome counts and queue depth; a key is required."""
    assert (await harness.client.get("/metrics")).status_code == 401
    response = await harness.post("/api/v1/messages", {"to": TO, "text": "hello"})
    await harness.wait_for(response.json()["id"], "delivered")
    text = (await harness.get("/metrics")).text
    lines = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert float(lines['smsdesk_messages_accepted_total{module="simulator"}']) >= 1
    assert float(lines['smsdesk_messages_total{module="simulator",status="sent"}']) >= 1
    assert float(lines['smsdesk_messages_total{module="simulator",status="delivered"}']) >= 1
    assert any(key.startswith("smsdesk_queue_depth") for key in lines)
    assert any(key.startswith("smsdesk_send_latency_seconds_bucket") for key in lines)


async def test_module_callback_urls_are_for_admins_and_work(harness: Harness) -> None:
    """The URLs an admin enters in a provider's portal are the ones the webhooks accept."""
    urls = (await harness.get("/api/v1/modules/simulator/callbacks")).json()
    assert urls["status"] == BASE_URL + status_url(harness)
    assert urls["inbound"] == BASE_URL + status_url(harness).replace("/status/", "/inbound/")
    _, agent_key = harness.service.keys.create("agent", "sender")
    refused = await harness.client.get(
        "/api/v1/modules/simulator/callbacks", headers={"Authorization": f"Bearer {agent_key}"}
    )
    assert refused.status_code == 403
    missing = await harness.get("/api/v1/modules/nope/callbacks")
    assert missing.status_code == 404
    assert "Choose one of" in missing.json()["error"]["message"]
