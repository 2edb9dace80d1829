"""What agents do with requests: answering a request's customer by SMS.

Shared by the API, the web pages and the CLI; what administrators do with inbound SMS is in
`inbound.actions`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations.requests import REQUEST_STATUSES, get_request, reply_number
from smsdesk.conversations.start import opt_out_of
from smsdesk.domain.errors import DomainError
from smsdesk.host import SendingHost
from smsdesk.outbox.accept import NewMessage, opted_out_refusals, prepare_message
from smsdesk.store import requests as store


async def reply(
    service: SendingHost,
    request_id: str,
    text: str,
    *,
    author: str,
    status: str | None = None,
    transactional: bool = False,
    api_key_id: str | None = None,
) -> dict[str, Any]:
    """Send an SMS answer to a request's customer, linked to the request by its session key."""
    if status is not None and status not in REQUEST_STATUSES:
        raise DomainError(f"Status must be one of {', '.join(REQUEST_STATUSES)}.", field="status")
    config = await run_in_threadpool(service.settings.load)

    def prepare() -> tuple[Row[Any], dict[str, Any]]:
        with service.engine.connect() as conn:
            request = get_request(conn, request_id)
            number = reply_number(conn, request, config.default_country_code)
            row = prepare_message(
                NewMessage(to=number, text=text),
                config,
                service.clock(),
                api_key_id=api_key_id,
                transactional=transactional,
                request_id=request.id,
                session_key=request.session_key,
            )
            refusals = opted_out_refusals(conn, [row])
            # Carries when and how the number opted out, for screens that word it for agents.
            refused = (
                opt_out_of(conn, number, message=refusals[0].message, field=refusals[0].field)
                if refusals
                else None
            )
        if refusals:
            raise refused or refusals[0]
        return request, row

    request, row = await run_in_threadpool(prepare)
    now = service.clock()
    await service.writer.run(lambda c: store.record_reply(c, request.id, row, author, status, now))
    service.wake_dispatcher()
    return row
