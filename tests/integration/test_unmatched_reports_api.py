"""Delivery reports that matched no message are listed for administrators."""

from __future__ import annotations

from tests.support.harness import Harness


async def report(h: Harness, plugin: str, provider_id: str, status: str) -> None:
    body = {"plugin": plugin, "external_message_id": provider_id, "status": status}
    response = await h.post("/api/v1/agent/delivery-status", body)
    assert response.json()["outcome"] == "unmatched"


async def test_unmatched_reports_are_listed_newest_first_in_pages(harness: Harness) -> None:
    """Each kept report shows its module, provider id and status; pages follow the cursor."""
    await report(harness, "simulator", "SIM-a", "delivered")
    await report(harness, "twilio", "SM-b", "undelivered")
    await report(harness, "simulator", "SIM-c", "delivered")

    first = (await harness.get("/api/v1/reports/unmatched?limit=2")).json()
    assert [r["provider_message_id"] for r in first["reports"]] == ["SIM-c", "SM-b"]
    assert first["reports"][1]["module"] == "twilio"
    assert first["reports"][1]["status"] == "undelivered"
    assert first["next_cursor"] is not None

    rest = await harness.get(f"/api/v1/reports/unmatched?limit=2&cursor={first['next_cursor']}")
    assert [r["provider_message_id"] for r in rest.json()["reports"]] == ["SIM-a"]
    assert rest.json()["next_cursor"] is None

    only = (await harness.get("/api/v1/reports/unmatched?module=twilio")).json()
    assert [r["provider_message_id"] for r in only["reports"]] == ["SM-b"]


async def test_unmatched_reports_need_an_admin_key(harness: Harness) -> None:
    """A sender key may not read other systems' reports."""
    _, sender_key = harness.service.keys.create("sender", "sender")
    response = await harness.client.get(
        "/api/v1/reports/unmatched", headers={"Authorization": f"Bearer {sender_key}"}
    )
    assert response.status_code == 403
