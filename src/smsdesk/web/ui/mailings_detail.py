"""One mailing (/mailings/{id}): its status and figures with a progress bar, the buttons of its
life cycle, its recipients a page at a time, the CSV export and a chart of delivery over time.

While it sends, `static/mailings.js` asks for the figures part (/mailings/{id}/figures) every
few seconds and swaps it in; when the status changes it reloads the page, so the buttons fit.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from smsdesk import mailings
from smsdesk.domain.errors import DomainError
from smsdesk.domain.mailing_checks import Check
from smsdesk.domain.mailings import Status
from smsdesk.domain.times import iso
from smsdesk.mailings import stats as mailing_stats
from smsdesk.service import Service
from smsdesk.store import mailings as store
from smsdesk.store.users import WebSession
from smsdesk.web.auth import service_of
from smsdesk.web.ui.charts import Series, compact_number, stacked_bar_chart
from smsdesk.web.ui.mailings import gettext_of, load_mailing, missing
from smsdesk.web.ui.mailings_words import (
    BLOCKED_NAMES,
    CHECK_NAMES,
    MAILING_STATUSES,
    MESSAGE_STATUSES,
    N_,
    problem_text,
    reason_text,
)
from smsdesk.web.ui.render import SECURITY_HEADERS, format_moment, page_time_zone, render
from smsdesk.web.ui.session import admin_session, form_with_csrf, page_language

router = APIRouter(include_in_schema=False)
ROWS = 50
ACTIVE = frozenset({"sending", "scheduled"})
NOTICES = {
    "saved": N_("The mailing was saved."),
    "start": N_("The mailing is sending."),
    "schedule": N_("The mailing is scheduled."),
    "pause": N_("The mailing is paused; its messages still queued were taken back."),
    "resume": N_("The mailing is sending again."),
    "cancel": N_("The mailing is cancelled; its messages still queued were cancelled."),
}
ROW_STATUSES = (*mailing_stats.MESSAGE_STATUSES, "refused", "opted_out")
NOTICE_STATUS = {
    "start": Status.SENDING,
    "resume": Status.SENDING,
    "schedule": Status.SCHEDULED,
    "pause": Status.PAUSED,
    "cancel": Status.CANCELLED,
}
SEND_BLOCKS = ("refused", "opted_out", "no_consent")


def figures(stats: dict[str, Any], status: str = "sending") -> dict[str, Any]:
    """The figures the page shows, from the mailing's statistics; recipients a cancelled
    mailing never queued are 'not sent' rather than waiting."""
    if "status" in stats:  # mailings.stats: refusals at sending are already blocked
        by_status: dict[str, int] = dict(stats["status"])
        blocked: dict[str, int] = dict(stats.get("blocked", {}))
    else:
        by_status = dict(stats.get("messages", {}))
        blocked = dict(stats.get("blocked", {}))
        for key in SEND_BLOCKS:  # refused when its turn came: counted under its reason
            if by_status.get(key):
                blocked[key] = blocked.get(key, 0) + by_status.pop(key)
    valid = sum(by_status.values())
    done = valid - sum(by_status.get(s, 0) for s in ("waiting", "queued", "sending"))
    shown = {
        "waiting": by_status.get("waiting", 0),
        "queued": by_status.get("queued", 0) + by_status.get("sending", 0),
        "sent": by_status.get("sent", 0),
        "delivered": by_status.get("delivered", 0),
        "undelivered": by_status.get("undelivered", 0),
        "failed": by_status.get("failed", 0) + by_status.get("expired", 0),
        "cancelled": by_status.get("cancelled", 0),
    }
    if status == "cancelled":
        shown = {"not_sent": shown.pop("waiting"), **shown}
    other = {k: v for k, v in by_status.items() if k not in MESSAGE_STATUSES and v}
    return {
        "recipients": stats.get("recipients", 0),
        "valid": valid,
        "done": done,
        "percent": round(100 * done / valid) if valid else 0,
        "by_status": shown,
        "other": other,
        "blocked": {k: v for k, v in blocked.items() if v},
        "blocked_total": sum(blocked.values()),
        "replies": stats.get("replies"),
        "opt_outs": stats.get("opt_outs"),
    }


def _statistics(service: Service, mailing_id: str) -> dict[str, Any]:
    return mailing_stats.statistics(service, mailing_id)


def _recipients(
    service: Service, mailing_id: str, after: int, result: Check | None, status: str | None
) -> list[Any]:
    with service.engine.connect() as conn:
        return store.list_recipients(
            conn, mailing_id, after=after, limit=ROWS + 1, result=result, status=status
        )


def _chart(service: Service, mailing_id: str, language: str, zone: Any, gettext: Any) -> Markup:
    buckets = mailing_stats.delivery_over_time(service, mailing_id)
    if not buckets:
        return Markup("")
    daily = len(buckets) > 1 and buckets[1].start - buckets[0].start >= 86_400
    labels = [_clock(b.start, language, zone, daily) for b in buckets]
    series = [
        Series("delivered", gettext("Delivered"), [b.delivered for b in buckets]),
        Series("failed", gettext("Failed"), [b.failed for b in buckets]),
    ]
    title = gettext("Delivery over time")
    return stacked_bar_chart(title, labels, series, format_value=compact_number(language))


def _clock(ts: float, language: str, zone: Any, daily: bool) -> str:
    """A bucket's start as the chart labels it: the time of day (14:05), or the date."""
    day, clock, _ = format_moment(ts, language, zone).rsplit(" ", 2)
    return day if daily else clock[:5]


async def detail_page(
    request: Request,
    session: WebSession,
    mailing_id: str,
    *,
    after: int = 0,
    result: str = "",
    recipient_status: str = "",
    problem: str | None = None,
    status: int = 200,
) -> Response:
    service = service_of(request)
    mailing = await run_in_threadpool(load_mailing, service, mailing_id)
    if mailing is None:
        return missing(request, session)
    chosen = Check(result) if result in CHECK_NAMES else None
    chosen_status = recipient_status if recipient_status in ROW_STATUSES else None
    stats = await run_in_threadpool(_statistics, service, mailing_id)
    rows = await run_in_threadpool(_recipients, service, mailing_id, after, chosen, chosen_status)
    language = page_language(request, session)
    zone = page_time_zone(request, session)
    gettext = gettext_of(request, session)
    chart = await run_in_threadpool(_chart, service, mailing_id, language, zone, gettext)
    asked = request.query_params.get("notice", "")
    # After the page followed the mailing to another status, the old notice is left out.
    notice = (
        NOTICES.get(asked) if NOTICE_STATUS.get(asked, mailing.status) == mailing.status else None
    )
    return render(
        request,
        "mailing_detail.html",
        session,
        status=status,
        mailing=mailing,
        step="detail",
        statuses=MAILING_STATUSES,
        check_names=CHECK_NAMES,
        blocked_names=BLOCKED_NAMES,
        message_statuses=MESSAGE_STATUSES,
        f=figures(stats, mailing.status.value),
        rows=[(row, reason_text(row.reason, gettext)) for row in rows[:ROWS]],
        next_after=rows[ROWS - 1].id if len(rows) > ROWS else None,
        after=after,
        chosen_result=chosen.value if chosen else "",
        chosen_status=chosen_status or "",
        row_statuses=ROW_STATUSES,
        chart=chart,
        notice=notice,
        problem=problem,
        active=mailing.status.value in ACTIVE,
    )


@router.get("/mailings/{mailing_id}")
async def detail(
    request: Request,
    mailing_id: str,
    after: int = Query(0, ge=0),
    result: str = Query("", max_length=20),
    status: str = Query("", max_length=20),
    session: WebSession = Depends(admin_session),
) -> Response:
    return await detail_page(
        request, session, mailing_id, after=after, result=result, recipient_status=status
    )


@router.get("/mailings/{mailing_id}/figures")
async def figures_part(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    """The figures part of the page alone, for the page's script to swap in."""
    service = service_of(request)
    mailing = await run_in_threadpool(load_mailing, service, mailing_id)
    if mailing is None:
        return missing(request, session)
    stats = await run_in_threadpool(_statistics, service, mailing_id)
    return render(
        request,
        "mailing_figures.html",
        session,
        mailing=mailing,
        check_names=CHECK_NAMES,
        blocked_names=BLOCKED_NAMES,
        message_statuses=MESSAGE_STATUSES,
        f=figures(stats, mailing.status.value),
        active=mailing.status.value in ACTIVE,
    )


@router.get("/mailings/{mailing_id}/recipients.csv")
async def export(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    """Every recipient with its check result and its message's status, as CSV."""
    service = service_of(request)
    mailing = await run_in_threadpool(load_mailing, service, mailing_id)
    if mailing is None:
        return missing(request, session)
    name = f"mailing-{mailing_id}-{(iso(service.clock()) or '')[:10]}.csv"
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="{name}"',
    }
    chunks = await run_in_threadpool(mailing_stats.export_csv, service, mailing_id)
    return StreamingResponse(chunks, media_type="text/csv; charset=utf-8", headers=headers)


@router.post("/mailings/{mailing_id}/delete")
async def delete(
    request: Request, mailing_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    await form_with_csrf(request, session)
    try:
        await run_in_threadpool(mailings.delete_mailing, service_of(request), mailing_id)
    except mailings.MailingNotFound:
        return missing(request, session)
    except DomainError as exc:
        text = problem_text(exc, gettext_of(request, session))
        return await detail_page(request, session, mailing_id, problem=text, status=422)
    return RedirectResponse("/mailings?notice=deleted", status_code=303)
