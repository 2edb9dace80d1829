"""The outbox screen: what is still to be sent and what failed, with resend, cancel, delete
and a CSV export of the same list.

Bulk actions act on every message the filters match (not only the page shown): a confirmation
page shows how many first; the work runs in batches through the writer (`BulkAction`). Agents
may cancel and resend in bulk, as they may one message; deleting is for administrators.

The filters and the status names here are shared with the messages screen.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from smsdesk.domain.errors import DomainError
from smsdesk.domain.message import Status
from smsdesk.domain.phone import normalise_msisdn
from smsdesk.domain.times import iso
from smsdesk.providers.registry import all_modules
from smsdesk.store import messages as repo
from smsdesk.store.outbox_admin import (
    OUTBOX_STATUSES,
    Action,
    BulkAction,
    MessageSearch,
    OperatorAction,
    Outcome,
    bulk_search,
    count_messages,
    iter_messages,
    search_messages,
)
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.render import SECURITY_HEADERS, render
from smsdesk.web.ui.session import (
    Forbidden,
    form_with_csrf,
    page_language,
    page_session,
    safe_next,
)

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


def N_(message: str) -> str:
    """Marks a text for translation where it is defined; templates translate it when shown."""
    return message


# The status values themselves are the msgids: the templates show `_(row.status)`.
STATUS_NAMES = {
    "queued": N_("queued"),
    "sending": N_("sending"),
    "sent": N_("sent"),
    "delivered": N_("delivered"),
    "undelivered": N_("undelivered"),
    "failed": N_("failed"),
    "expired": N_("expired"),
    "cancelled": N_("cancelled"),
}
PRIORITY_NAMES = {1: N_("1 (fastest)"), 2: N_("2 (normal)"), 3: N_("3 (slowest)")}
NOTICES = {
    Outcome.RESENT: N_("The message is queued again."),
    Outcome.CANCELLED: N_("The message is cancelled."),
    Outcome.DELETED: N_("The message is deleted."),
    Outcome.NOT_ALLOWED: N_("Its status does not allow that (any more); nothing was changed."),
    Outcome.MISSING: N_("That message no longer exists."),
}
FILTER_ERRORS = {
    "date": N_("Enter a date as YYYY-MM-DD."),
    "number": N_("Not a phone number; enter digits, e.g. +31612345678."),
}


@dataclass
class Filters:
    """A screen's filters as typed (to show them again) and as a search."""

    values: dict[str, str]
    search: MessageSearch
    errors: dict[str, str] = field(default_factory=dict)

    def query(self, **extra: str) -> str:
        """The query string of these filters (plus `extra`), for links and the export."""
        kept = {k: v for k, v in {**self.values, **extra}.items() if v}
        return urlencode(kept)


def _day(value: str, days_later: int = 0) -> float:
    """Midnight (UTC, as the screens show times) starting a date given as YYYY-MM-DD."""
    start = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    return (start + timedelta(days=days_later)).timestamp()


def parse_filters(
    params: Mapping[str, str],
    names: tuple[str, ...],
    default_statuses: tuple[str, ...] | None,
    country_code: str | None = None,
) -> Filters:
    """Read the filters named in `names` from a query; a bad one is reported, not applied."""
    values = {name: params.get(name, "").strip() for name in names}
    errors: dict[str, str] = {}
    found: dict[str, Any] = {}
    status = values.get("status", "")
    found["statuses"] = (status,) if status in STATUS_NAMES else default_statuses
    if values.get("module"):
        found["module"] = values["module"]
    if values.get("connection"):
        found["connection_id"] = values["connection"]
    if values.get("priority") in ("1", "2", "3"):
        found["priority"] = int(values["priority"])
    for name, key, shift in (("from", "since", 0), ("to", "until", 1)):
        if values.get(name):
            try:
                found[key] = _day(values[name], shift)
            except ValueError:
                errors[name] = FILTER_ERRORS["date"]
    if values.get("number"):
        _number_filter(values["number"], country_code, found, errors)
    if values.get("text"):
        found["text"] = values["text"]
    if values.get("id"):
        found["message_id"] = values["id"]
    return Filters(values, MessageSearch(**found), errors)


def _number_filter(
    raw: str, country_code: str | None, found: dict[str, Any], errors: dict[str, str]
) -> None:
    """A whole number matches exactly (in E.164); a part of one matches any number holding it."""
    digits = "".join(c for c in raw if c.isdigit())
    if not digits or any(not (c.isdigit() or c in "+ -()./") for c in raw):
        errors["number"] = FILTER_ERRORS["number"]
        return
    try:
        found["recipient"] = normalise_msisdn(raw, country_code)
    except DomainError:
        found["recipient_digits"] = digits


def page_of(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    """The rows to show and the cursor of the next (older) page, if there is one."""
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def choices() -> dict[str, Any]:
    """What the filter selects offer."""
    return {
        "statuses": list(STATUS_NAMES),
        "modules": [module.name for module in all_modules()],
        "module_labels": {module.name: module.title for module in all_modules()},
        "priorities": PRIORITY_NAMES,
    }


OUTBOX_FILTERS = ("status", "module", "connection", "priority", "from", "to", "number")


def _outbox_filters(request: Request, params: Mapping[str, str] | None = None) -> Filters:
    country_code = service_of(request).settings.load().default_country_code
    source = request.query_params if params is None else params
    return parse_filters(source, OUTBOX_FILTERS, OUTBOX_STATUSES, country_code)


def _outbox_page(request: Request, filters: Filters, before: str | None) -> dict[str, Any]:
    service = service_of(request)
    with service.engine.connect() as conn:
        rows = search_messages(conn, filters.search, before_id=before or None, limit=PAGE_SIZE + 1)
        depth = repo.queue_depth(conn)
    shown, next_cursor = page_of(rows, PAGE_SIZE)
    connections = {c.id: c.name for c in service.settings.connections.all()}
    return {"rows": shown, "next_cursor": next_cursor, "depth": depth, "connections": connections}


@router.get("/outbox")
async def outbox(
    request: Request,
    before: str | None = None,
    done: str | None = None,
    session: WebSession = Depends(page_session),
) -> Response:
    filters = _outbox_filters(request)
    found = await run_in_threadpool(_outbox_page, request, filters, before)
    outcome = Outcome(done) if done in set(Outcome) else None
    notice = NOTICES[outcome] if outcome else None
    return render(
        request,
        "outbox.html",
        session,
        filters=filters,
        before=before,
        notice=notice,
        bulk_done=_bulk_done(request),
        notice_ok=outcome in (Outcome.RESENT, Outcome.CANCELLED, Outcome.DELETED),
        status_names=STATUS_NAMES,
        back=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        **found,
        **choices(),
    )


CSV_COLUMNS = (
    "id",
    "created_at",
    "status",
    "module",
    "to",
    "sender",
    "priority",
    "attempts",
    "next_attempt_at",
    "status_code",
    "error",
    "provider_message_id",
    "encoding",
    "segments",
    "text",
)
# The header line in a language other than English (English keeps the column keys).
CSV_LABELS = {
    "id": N_("Message ID"),
    "created_at": N_("Created"),
    "status": N_("Status"),
    "module": N_("Module"),
    "to": N_("Recipient"),
    "sender": N_("Sender"),
    "priority": N_("SMS priority"),
    "attempts": N_("Attempts"),
    "next_attempt_at": N_("Next attempt"),
    "status_code": N_("Provider code"),
    "error": N_("Reason"),
    "provider_message_id": N_("Provider's message ID"),
    "encoding": N_("Encoding"),
    "segments": N_("SMS parts"),
    "text": N_("Message text"),
}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_row(row: Any) -> list[str]:
    queued = row.status == Status.QUEUED.value
    values = (
        row.id,
        iso(row.created_at),
        row.status,
        row.module,
        row.recipient,
        row.sender,
        row.priority,
        row.attempts,
        iso(row.next_attempt_at) if queued else None,
        row.status_code,
        row.error,
        row.provider_message_id,
        row.encoding,
        row.segments,
        row.body,
    )
    return [csv_cell(value) for value in values]


def csv_lines(rows: Iterator[Any], header: Sequence[str] = CSV_COLUMNS) -> Iterator[str]:
    """The export: a byte-order mark (for spreadsheets), a header, then a line per message."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    buffer.write("\ufeff")
    writer.writerow(header)
    for count, row in enumerate(rows, 1):
        writer.writerow(_csv_row(row))
        if count % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _csv_header(request: Request, session: WebSession) -> Sequence[str]:
    language = page_language(request, session)
    if language == "en":
        return CSV_COLUMNS
    gettext = translations(language).gettext
    return [gettext(CSV_LABELS[column]) for column in CSV_COLUMNS]


@router.get("/outbox.csv")
async def outbox_csv(request: Request, session: WebSession = Depends(page_session)) -> Response:
    """The outbox with the screen's filters, streamed as CSV (every page, not only the first)."""
    filters = _outbox_filters(request)
    service = service_of(request)
    stamp = datetime.fromtimestamp(service.clock(), UTC).strftime("%Y%m%d-%H%M%S")
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="smsdesk-outbox-{stamp}.csv"',
    }
    return StreamingResponse(
        csv_lines(iter_messages(service.engine, filters.search), _csv_header(request, session)),
        media_type="text/csv; charset=utf-8",
        headers=headers,
    )


def _back_with(back: str | None, outcome: Outcome, default: str) -> str:
    """Where to go after an action: the page it came from, telling what happened."""
    target = safe_next(back) if back else default
    parts = urlsplit(target)
    if parts.path not in ("/outbox", "/messages") and not parts.path.startswith("/messages/"):
        parts = urlsplit(default)
    if outcome is Outcome.DELETED and parts.path.startswith("/messages/"):
        parts = urlsplit("/messages")
    kept = [p for p in parts.query.split("&") if p and not p.startswith("done=")]
    return parts.path + "?" + "&".join([*kept, f"done={outcome.value}"])


async def _act(request: Request, session: WebSession, message_id: str, action: Action) -> Response:
    form = await form_with_csrf(request, session)
    if action is Action.DELETE and not session.user.is_admin:
        raise Forbidden()
    service = service_of(request)
    job = OperatorAction(
        message_id,
        action,
        service.clock(),
        f"{session.user.username} (web)",
        service.events,
        trail=service.trail,
        by=user_actor(request, session),
    )
    outcome = await service.writer.run(job)
    if outcome in (Outcome.RESENT, Outcome.CANCELLED):
        service.wake_dispatcher()
    return RedirectResponse(_back_with(form.get("back"), outcome, "/outbox"), status_code=303)


@router.post("/outbox/{message_id}/resend")
async def resend(
    request: Request, message_id: str, session: WebSession = Depends(page_session)
) -> Response:
    return await _act(request, session, message_id, Action.RESEND)


@router.post("/outbox/{message_id}/cancel")
async def cancel(
    request: Request, message_id: str, session: WebSession = Depends(page_session)
) -> Response:
    return await _act(request, session, message_id, Action.CANCEL)


@router.post("/outbox/{message_id}/delete")
async def delete(
    request: Request, message_id: str, session: WebSession = Depends(page_session)
) -> Response:
    """Administrators only: a queued message is cancelled, a finished one removed."""
    return await _act(request, session, message_id, Action.DELETE)


# -- bulk actions ----------------------------------------------------------------------------


def _bulk_action(session: WebSession, name: str) -> Action | None:
    """The action named in the address, if there is one and this user may do it."""
    if name not in set(Action):
        return None
    action = Action(name)
    if action is Action.DELETE and not session.user.is_admin:
        raise Forbidden()
    return action


def _bulk_done(request: Request) -> dict[str, Any] | None:
    """What the last bulk action did, from the address it sent the user back to."""
    name, count, skipped = (request.query_params.get(k, "") for k in ("bulk", "count", "skipped"))
    if name not in set(Action) or not count.isdigit():
        return None
    return {"action": name, "count": int(count), "skipped": int(skipped or 0)}


@router.get("/outbox/bulk/{name}")
async def bulk_confirm(
    request: Request, name: str, session: WebSession = Depends(page_session)
) -> Response:
    """The confirmation step: how many messages the action will change, and the button."""
    action = _bulk_action(session, name)
    if action is None:
        return RedirectResponse("/outbox", status_code=303)
    filters = _outbox_filters(request)
    if filters.errors:
        return RedirectResponse("/outbox?" + filters.query(), status_code=303)
    service = service_of(request)

    def count() -> int:
        with service.engine.connect() as conn:
            return count_messages(conn, bulk_search(filters.search, action))

    return render(
        request,
        "bulk_confirm.html",
        session,
        kind=f"outbox-{action.value}",
        count=await run_in_threadpool(count),
        action_url=f"/outbox/bulk/{action.value}/run",
        hidden={k: v for k, v in filters.values.items() if v},
        back_url="/outbox" + (f"?{filters.query()}" if filters.query() else ""),
    )


@router.post("/outbox/bulk/{name}/run")  # not /outbox/bulk/cancel: that is one message's
async def bulk_run(
    request: Request, name: str, session: WebSession = Depends(page_session)
) -> Response:
    """Every message the posted filters match (now), in batches; back to the outbox after."""
    form = await form_with_csrf(request, session)
    action = _bulk_action(session, name)
    filters = _outbox_filters(request, form)
    if action is None or filters.errors:
        return RedirectResponse("/outbox", status_code=303)
    service = service_of(request)
    job = BulkAction(
        filters.search,
        action,
        service.clock(),
        f"{session.user.username} (web)",
        service.trail,
        user_actor(request, session),
        service.events,
    )
    result = await job.run(service.writer)
    if action is not Action.DELETE or result.done:
        service.wake_dispatcher()
    done = {"bulk": action.value, "count": str(result.done), "skipped": str(result.skipped)}
    return RedirectResponse("/outbox?" + filters.query(**done), status_code=303)
