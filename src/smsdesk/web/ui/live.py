"""Live updates for the screens: a Server-Sent Events stream, and polling for browsers that
cannot keep one open.

`GET /live/events?topics=message,conversation&keys=<ids>` streams updates as they happen
(`id:` lines carry the cursor, so a reconnecting browser's `Last-Event-ID` resumes where it
stopped); a comment every `heartbeat` seconds keeps proxies from closing an idle stream, and
`X-Accel-Buffering: no` keeps nginx from holding updates back. `GET /live/poll?after=<cursor>`
answers the same updates as JSON. Both need a logged-in session (an open stream ends within
seconds of its session's logout or expiry, and polling then answers 401); the page then
reloads the parts of itself that changed (static/live.js).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from smsdesk.domain.errors import DomainError
from smsdesk.live.feed import LiveFeed, Subscription
from smsdesk.live.updates import Interest, LiveUpdate, cursor_text, parse_cursor, parse_interest
from smsdesk.web.auth import service_of
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.render import SECURITY_HEADERS
from smsdesk.web.ui.session import SESSION_COOKIE, optional_session, page_language

router = APIRouter(include_in_schema=False)

STREAM_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# How long a browser waits before reconnecting a broken stream, in milliseconds.
RETRY_MS = 2000


def N_(message: str) -> str:
    return message


REFUSALS = {
    "topics": N_("Live updates need topics: some of message, conversation, request."),
    "keys": N_("Live updates take up to 50 ids, separated by commas."),
}


def _refused(status: int, code: str, message: str) -> Response:
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=status,
        headers={**SECURITY_HEADERS},
    )


def _login_required(request: Request) -> Response:
    language = translations(page_language(request, None))
    return _refused(401, "login_required", language.gettext(N_("Log in to receive live updates.")))


async def _interest(request: Request, topics: str, keys: str) -> Interest | Response:
    """What the signed-in user asks to follow, or the refusal to answer instead."""
    session = await optional_session(request)
    if session is None:
        return _login_required(request)
    try:
        return parse_interest(topics, keys)
    except DomainError as exc:
        language = translations(page_language(request, session))
        message = language.gettext(REFUSALS.get(exc.field, exc.message))
        return _refused(422, "invalid_field", message)


def frame(update: LiveUpdate) -> str:
    """One update as an SSE event."""
    data = json.dumps(update.data, separators=(",", ":"), sort_keys=True)
    return f"id: {cursor_text(update.cursor)}\nevent: {update.topic}\ndata: {data}\n\n"


async def _stream(feed: LiveFeed, subscription: Subscription, announce: bool) -> AsyncIterator[str]:
    try:
        opening = f"retry: {RETRY_MS}\n\n"
        if announce:  # a new stream learns its cursor before anything happens
            opening += f"id: {cursor_text(subscription.start)}\nevent: ready\ndata: {{}}\n\n"
        yield opening
        while True:
            updates = await subscription.next(feed.heartbeat)
            if updates is None:
                return
            yield "".join(frame(update) for update in updates) if updates else ": ping\n\n"
    finally:
        feed.unsubscribe(subscription)


@router.get("/live/events")
async def live_events(
    request: Request, topics: str = "", keys: str = "", after: str = ""
) -> Response:
    interest = await _interest(request, topics, keys)
    if isinstance(interest, Response):
        return interest
    resume = parse_cursor(request.headers.get("last-event-id") or after)
    feed = service_of(request).live
    # The stream ends when its session does (logout, revocation, expiry), within seconds.
    session = request.cookies.get(SESSION_COOKIE)
    subscription = await feed.subscribe(interest, resume, session=session)
    return StreamingResponse(
        _stream(feed, subscription, resume is None),
        media_type="text/event-stream",
        headers=STREAM_HEADERS,
    )


@router.get("/live/poll")
async def live_poll(
    request: Request, topics: str = "", keys: str = "", after: str = ""
) -> Response:
    """The updates after cursor `after` (none without one) and the cursor to ask from next."""
    interest = await _interest(request, topics, keys)
    if isinstance(interest, Response):
        return interest
    updates, cursor = await service_of(request).live.poll(parse_cursor(after), interest)
    body = {
        "cursor": cursor_text(cursor),
        "events": [{"topic": u.topic, "data": u.data} for u in updates],
    }
    return JSONResponse(body, headers={**SECURITY_HEADERS})
