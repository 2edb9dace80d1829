"""The Kannel stand-in of the kill tests speaks what the kannel module expects.

The real kannel module sends to it over loopback; its dlr-url calls reach a small recorder
and are read back with the module's own report parser, so the stand-in's escapes are the ones
`providers/kannel.py` asks smsbox for.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from smsdesk.domain.message import Status
from smsdesk.domain.sms import OutboundSms
from smsdesk.providers.base import ProviderContext
from smsdesk.providers.kannel import KannelProvider, KannelSettings, parse_status_report
from tests.support.kannel_standin import KannelStandIn
from tests.support.processes import wait_until

MESSAGE_ID = "01M893FVE04ZX1S6SP3C4AF7YA"


class DlrRecorder:
    """Answers GETs 200 (503 to the first `refuse` ones) and keeps each query."""

    def __init__(self, refuse: int = 0) -> None:
        self.queries: list[dict[str, str]] = []
        self.refuse = refuse
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                recorder.queries.append({k: v[0] for k, v in query.items()})
                status = 503 if len(recorder.queries) <= recorder.refuse else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/kannel/status/s"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def recorder() -> Iterator[DlrRecorder]:
    running = DlrRecorder()
    running.thread.start()
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()


async def send(standin: KannelStandIn, status_url: str) -> bool:
    settings = KannelSettings(**standin.module_settings())
    sms = OutboundSms(
        message_id=MESSAGE_ID,
        to="+46701234567",
        sender="SMSDESK",
        text="hej",
        encoding="gsm7",
        segments=1,
        priority=2,
        status_callback_url=status_url,
    )
    async with httpx.AsyncClient() as client:
        provider = KannelProvider(settings, client, ProviderContext(data_dir=Path(".")))
        [result] = await provider.send([sms])
    return result.accepted


async def test_a_send_is_recorded_and_reported_delivered_by_our_id(recorder: DlrRecorder) -> None:
    """The module's request is accepted and recorded under our message id; the dlr-url call
    parses as a delivery report for that id, with the SMSC's receipt and a time."""
    with KannelStandIn(report_delay=0.0) as standin:
        assert await send(standin, recorder.url)

        def answered() -> bool:  # the stand-in notes it after its answer left
            return any(r.answer_reached is not None for r in standin.received())

        await asyncio.to_thread(wait_until, answered, "the stand-in to note its answer")
        [taken] = standin.received()
        assert (taken.message_id, taken.to, taken.answer_reached) == (
            MESSAGE_ID,
            "+46701234567",
            True,
        )
        await asyncio.to_thread(wait_until, lambda: recorder.queries, "the dlr-url call")
    [report] = parse_status_report(recorder.queries[0])
    assert (report.provider_message_id, report.status) == (MESSAGE_ID, Status.DELIVERED)
    assert "stat:DELIVRD" in report.description
    assert report.occurred_at is not None and abs(report.occurred_at - time.time()) < 60


async def test_a_refused_report_is_tried_again_until_taken(recorder: DlrRecorder) -> None:
    """smsbox with http-request-retry: a report smsdesk could not take comes again."""
    recorder.refuse = 2
    with KannelStandIn(report_delay=0.0, retry_delay=0.01) as standin:
        assert await send(standin, recorder.url)
        await asyncio.to_thread(
            wait_until, lambda: standin.reports_pending() == 0, "the report taken"
        )
        [report] = standin.reports()
    assert (report.attempts, report.dropped) == (3, False) and report.delivered_at is not None


async def test_a_report_is_dropped_after_its_retries(recorder: DlrRecorder) -> None:
    """Past its retries the report is given up, as smsbox does."""
    recorder.refuse = 100
    with KannelStandIn(report_delay=0.0, report_retries=1, retry_delay=0.01) as standin:
        assert await send(standin, recorder.url)
        await asyncio.to_thread(
            wait_until, lambda: standin.reports_pending() == 0, "the report dropped"
        )
        [report] = standin.reports()
    assert (report.attempts, report.dropped, report.delivered_at) == (2, True, None)


async def test_a_held_answer_keeps_the_request_in_flight(recorder: DlrRecorder) -> None:
    """hold(1): the request is taken at once, its answer only after release()."""
    with KannelStandIn() as standin:
        standin.hold(1)
        sending = asyncio.create_task(send(standin, recorder.url))
        await asyncio.to_thread(wait_until, lambda: standin.held() == 1, "the request held")
        assert [r.message_id for r in standin.received()] == [MESSAGE_ID]
        assert not sending.done()
        standin.release()
        assert await sending
        assert await send(standin, recorder.url)  # the next one is not held
