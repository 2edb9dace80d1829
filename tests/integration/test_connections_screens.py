"""The Connections, Routes and Spend controls screens, and the dashboard's connection card."""

from __future__ import annotations

import re

import httpx

from tests.support.harness import Harness

TOKEN = "tok-" + "5" * 28


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


async def test_screens_add_a_connection_a_route_and_caps(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """A connection is added with its module's fields (the token never comes back), a route
    sends Norway through it, explain names it, a cap is saved and today's usage shows."""
    h = harness
    await h.configure(default_country_code="+31")
    start = await admin.get("/preferences/connections/new?module=twilio")
    token = csrf(start)
    added = await admin.post(
        "/preferences/connections",
        data={
            "csrf_token": token,
            "module": "twilio",
            "name": "Reserve",
            "enabled": "on",
            "rate_limit": "0",
            "concurrency": "4",
            "failure_threshold": "5",
            "cool_down": "60",
            "settings.account_sid": "AC" + "c" * 32,
            "settings.auth_token": TOKEN,
        },
    )
    assert added.status_code == 303, added.text
    page = await admin.get(added.headers["location"])
    assert "Reserve" in page.text and TOKEN not in page.text
    assert "/webhooks/connections/" in page.text
    reserve = h.service.settings.connections.get("Reserve")
    assert reserve is not None

    wrong = await admin.post(
        f"/preferences/connections/{reserve.id}",
        data={"csrf_token": token, "name": "Reserve", "settings.account_sid": "nope"},
    )
    assert wrong.status_code == 422 and "f-settings-account-sid-error" in wrong.text

    listed = await admin.get("/preferences/connections")
    assert 'data-health="closed"' in listed.text and "Reserve" in listed.text
    route = await admin.post(
        "/preferences/routes",
        data={
            "csrf_token": token,
            "name": "Norway",
            "enabled": "on",
            "countries": "NO",
            "connection_0": reserve.id,
            "connection_1": "default",
        },
    )
    assert route.status_code == 303, route.text
    routes = await admin.get("/preferences/routes")
    assert "Reserve → default" in routes.text
    refused = await admin.post(
        "/preferences/routes",
        data={"csrf_token": token, "name": "X", "countries": "Narnia", "connection_0": "default"},
    )
    assert refused.status_code == 422 and "not a country code" in refused.text
    explained = await admin.post(
        "/preferences/routes/explain", data={"csrf_token": token, "to": "+4790012345"}
    )
    assert explained.status_code == 200

    saved = await admin.post(
        "/preferences/spend",
        data={
            "csrf_token": token,
            "allowed_countries": "NL, NO",
            "daily_total": "10",
            "daily_per_country": "NO = 2",
            "daily_per_api_key": "",
            "alert_percent": "80",
        },
    )
    assert saved.status_code == 303, saved.text
    assert h.service.settings.load().spend.daily_per_country == {"NO": 2}
    bad = await admin.post(
        "/preferences/spend",
        data={"csrf_token": token, "daily_per_country": "Norway", "alert_percent": "80"},
    )
    assert bad.status_code == 422 and "error-daily_per_country" in bad.text
    sent = await h.post("/api/v1/messages", {"to": "0612345678", "text": "hi"})
    assert sent.status_code < 300
    await h.wait_for(sent.json()["id"], "delivered")
    mine = await admin.get("/outbox?status=delivered&connection=default")
    assert 'id="f-connection"' in mine.text and sent.json()["id"] in mine.text
    other = await admin.get(f"/outbox?status=delivered&connection={reserve.id}")
    assert sent.json()["id"] not in other.text
    usage = await admin.get("/preferences/spend")
    assert 'data-percent="10.0"' in usage.text
    dashboard = await admin.get("/dashboard")
    assert 'id="connections-health"' in dashboard.text and "Reserve" in dashboard.text
    assert 'id="spend-alert"' not in dashboard.text
    assert (await h.put("/api/v1/spend", {"daily_total": 1})).status_code == 200
    dashboard = await admin.get("/dashboard")
    assert "cap of 1 messages (all messages) is 100 % used" in dashboard.text
