"""Every form of the web interface refuses a POST without the session's CSRF token."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from smsdesk.web.ui import dashboard, login, messages, outbox, requests, sms_settings
from tests.support.harness import Harness
from tests.support.webui import create_user, log_in

SCREENS = (login, dashboard, sms_settings, outbox, messages, requests)


def form_paths() -> list[str]:
    """Every POST of every screen's router, with an id filled in."""
    paths = []
    for screen in SCREENS:
        for route in screen.router.routes:
            if isinstance(route, APIRoute) and "POST" in (route.methods or set()):
                paths.append(re.sub(r"\{[^}]+\}", "01ABCDEFGHJKMNPQRSTVWXYZ00", route.path))
    return sorted(paths)


async def test_every_form_refuses_a_missing_or_forged_token(harness: Harness) -> None:
    paths = form_paths()
    assert {
        "/login",
        "/logout",
        "/language",
        "/preferences/general/sms",
        "/outbox/01ABCDEFGHJKMNPQRSTVWXYZ00/cancel",
    } <= set(paths)
    assert len(paths) >= 10
    create_user(harness.service, "admin", "admin")
    async with harness.browser() as browser:
        await log_in(browser, "admin")
        for path in paths:
            for token in ({}, {"csrf_token": "forged"}):
                answer = await browser.post(path, data={**token, "text": "x", "language": "nl"})
                assert answer.status_code == 403, (path, token, answer.status_code)
        assert (await browser.get("/dashboard")).status_code == 200  # still logged in
    assert harness.service.users.get("admin").language == "en"  # type: ignore[union-attr]
