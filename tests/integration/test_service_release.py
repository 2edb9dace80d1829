"""A service that was stopped and closed leaves nothing of itself behind in the process: the
registries that other modules keep per database drop its engine, and with it the service.

A process that opens services one after another (the test suite does, thousands of times)
would otherwise keep every one of them, their caches and their connections' memory."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from sqlalchemy.engine import Engine

from smsdesk.service import Service
from tests.conftest import database_url
from tests.support.harness import running_service
from tests.support.webui import create_user, log_in


async def used_and_closed(
    tmp_path: Path, url: str = ""
) -> tuple[weakref.ref[Service], weakref.ref[Engine]]:
    """Weak references to a service (and its engine) that sent an SMS, took an opt-out, showed
    its dashboard and was then stopped and closed."""
    async with running_service(tmp_path, url) as h:
        await h.configure(module_settings={"simulator": {"report_delay": 0.0}})
        sent = await h.post("/api/v1/messages", {"to": "+31612345678", "text": "hello"})
        assert sent.status_code == 201, sent.text
        await h.wait_for(sent.json()["id"], "delivered")
        await h.receive("+31612345679", "STOP")
        create_user(h.service, "admin", "admin")
        async with h.browser() as browser:
            await log_in(browser, "admin")
            assert (await browser.get("/dashboard")).status_code == 200
        service, engine = weakref.ref(h.service), weakref.ref(h.service.engine)
    return service, engine


async def test_a_closed_service_is_freed(tmp_path: Path, engine: Engine) -> None:
    service, its_engine = await used_and_closed(tmp_path, database_url(engine))
    gc.collect()
    assert service() is None, "the closed service is still referred to"
    assert its_engine() is None, "the closed service's engine is still referred to"
