"""Opt-outs as agents and administrators see them.

The words for an opted-out customer (a badge with when and how, the refusal of a reply or of a
new conversation) in the page's language, and the administrators' opt-out list (/opt-outs):
search, add, and remove after a confirmation page. Changes go through the same function as the
API and the CLI (`store.optout_changes.change_by_person`), with their audit entry; a number of
an erased customer is listed only as "erased customer", as the list keeps only its hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, tzinfo
from typing import Any

from babel.dates import format_date
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations.start import OptedOut, opt_out_of
from smsdesk.customers import normalise_for_lookup
from smsdesk.domain.errors import DomainError
from smsdesk.service import Service
from smsdesk.store import optouts as store
from smsdesk.store.optout_changes import change_by_person
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.field_errors import translate_error
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.render import environment, page_time_zone, render
from smsdesk.web.ui.session import admin_session, form_with_csrf, page_language

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100
Gettext = Callable[[str], str]


def _(message: str) -> str:
    """Marks a text for translation where it is defined; it is translated when shown."""
    return message


# How a number came onto the list -> what an agent reads (msgids).
HOW = {
    "keyword": _("replied {keyword}"),
    "api": _("added through the API"),
    "admin": _("added by an administrator"),
}
BADGE = _("Opted out on {date} ({how})")
REPLY_REFUSED = _("This customer has opted out of SMS ({how} on {date}). Your reply was not sent.")
START_REFUSED = _(
    "This customer has opted out of SMS ({how} on {date}). No conversation was started."
)


def short_date(at: float, language: str, zone: tzinfo = UTC, now: float | None = None) -> str:
    """3 Dec (with the year when it is not this year's), in the page's language, on the
    viewer's calendar (`zone`): an opt-out at 23:30 UTC is the next day in Amsterdam."""
    moment = datetime.fromtimestamp(at, UTC).astimezone(zone)
    today = datetime.fromtimestamp(now, UTC) if now else datetime.now(UTC)
    this_year = today.astimezone(zone).year
    pattern = "d MMM" if moment.year == this_year else "d MMM yyyy"
    return format_date(moment, pattern, locale=language)


def how_words(found: OptedOut, gettext: Gettext) -> str:
    how = HOW.get(found.how, HOW["admin"])
    if found.how == "keyword" and not found.keyword:
        how = HOW["admin"]
    return gettext(how).format(keyword=found.keyword or "")


def badge_text(found: OptedOut, language: str, zone: tzinfo = UTC) -> str:
    """ "Opted out on 3 Dec (replied STOP)", the date in the viewer's time zone."""
    gettext = translations(language).gettext
    return gettext(BADGE).format(
        date=short_date(found.since, language, zone), how=how_words(found, gettext)
    )


def refusal_text(
    found: OptedOut, language: str, zone: tzinfo = UTC, *, starting: bool = False
) -> str:
    """Why an agent's SMS was not sent, without advice meant for API clients."""
    gettext = translations(language).gettext
    return gettext(START_REFUSED if starting else REPLY_REFUSED).format(
        date=short_date(found.since, language, zone), how=how_words(found, gettext)
    )


def badges_for(
    service: Service, numbers: Iterable[str | None], language: str, zone: tzinfo = UTC
) -> dict[str, str]:
    """number -> its badge text, for those of `numbers` that opted out."""
    wanted = {n for n in numbers if n}
    if not wanted:
        return {}
    badges: dict[str, str] = {}
    with service.engine.connect() as conn:
        for number in store.opted_out(conn, wanted):
            found = opt_out_of(conn, number)
            if found is not None:
                badges[number] = badge_text(found, language, zone)
    return badges


# -- the opt-out list (administrators) --------------------------------------------------------


def _entry(row: Any, language: str, zone: tzinfo, gettext: Gettext) -> dict[str, Any]:
    how = {"sms": "keyword", "api": "api"}.get(row.source, "admin")
    found = OptedOut(row.number or "", row.created_at, how, row.keyword, "")
    return {
        "number": row.number,
        "how": how_words(found, gettext),
        "date": short_date(row.created_at, language, zone),
        "at": row.created_at,
    }


async def _list_page(
    request: Request,
    session: WebSession,
    *,
    search: str = "",
    cursor: str | None = None,
    status: int = 200,
    notice: str | None = None,
    number_error: str | None = None,
    typed: str = "",
) -> Response:
    service = service_of(request)
    language = page_language(request, session)
    zone = page_time_zone(request, session)
    gettext = translations(language).gettext

    def load() -> tuple[list[Any], list[Any]]:
        with service.engine.connect() as conn:
            try:
                rows = store.list_opt_outs(
                    conn, before=cursor, limit=PAGE_SIZE + 1, contains=search or None
                )
            except ValueError:
                rows = store.list_opt_outs(conn, limit=PAGE_SIZE + 1, contains=search or None)
            erased = [] if search or cursor else store.list_erased(conn, limit=PAGE_SIZE)
        return rows, erased

    rows, erased = await run_in_threadpool(load)
    page = rows[:PAGE_SIZE]
    return render(
        request,
        "optouts.html",
        session,
        status=status,
        view="list",
        rows=[_entry(r, language, zone, gettext) for r in page],
        erased=[_entry(r, language, zone, gettext) for r in erased],
        search=search,
        next_cursor=store.opt_out_cursor(page[-1]) if len(rows) > PAGE_SIZE else None,
        notice=notice,
        number_error=number_error,
        typed=typed,
    )


@router.get("/opt-outs")
async def opt_out_list(
    request: Request,
    q: str = Query("", max_length=40),
    cursor: str | None = Query(None, max_length=80),
    notice: str | None = Query(None, max_length=20),
    session: WebSession = Depends(admin_session),
) -> Response:
    shown = notice if notice in ("added", "known", "removed") else None
    return await _list_page(request, session, search=q.strip(), cursor=cursor, notice=shown)


def _change(request: Request, session: WebSession, number: str, *, opted_out: bool) -> bool:
    service = service_of(request)
    actor = user_actor(request, session)
    now = service.clock()
    return service.writer.run_sync(
        lambda conn: change_by_person(
            conn,
            service.trail,
            actor,
            number,
            opted_out=opted_out,
            source="web",
            now=now,
            events=service.events,
        )
    )


@router.post("/opt-outs")
async def opt_out_add(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    """Add a number typed as the administrator would; a bad number is shown beside the field."""
    form = await form_with_csrf(request, session)
    typed = form.get("number", "").strip()
    service = service_of(request)
    try:
        number = await run_in_threadpool(normalise_for_lookup, service, typed)
    except DomainError as exc:
        gettext = translations(page_language(request, session)).gettext
        return await _list_page(
            request,
            session,
            status=422,
            number_error=translate_error(exc.message, gettext),
            typed=typed,
        )
    added = await run_in_threadpool(_change, request, session, number, opted_out=True)
    return RedirectResponse(f"/opt-outs?notice={'added' if added else 'known'}", status_code=303)


def _listed(request: Request, raw: str) -> str | None:
    """The number as listed (normalised, else as written), or None if it is not listed."""
    service = service_of(request)
    try:
        number = normalise_for_lookup(service, raw)
    except DomainError:
        number = raw.strip()
    with service.engine.connect() as conn:
        return number if store.get_opt_out(conn, number) is not None else None


@router.get("/opt-outs/remove")
async def opt_out_remove_confirm(
    request: Request,
    number: str = Query("", max_length=40),
    session: WebSession = Depends(admin_session),
) -> Response:
    """The confirmation step: the number, and the button that lets it receive SMS again."""
    listed = await run_in_threadpool(_listed, request, number)
    if listed is None:
        return render(
            request, "optouts.html", session, status=404, view="gone", listed_number=number
        )
    return render(request, "optouts.html", session, view="confirm", listed_number=listed)


@router.post("/opt-outs/remove")
async def opt_out_remove(
    request: Request, session: WebSession = Depends(admin_session)
) -> Response:
    form = await form_with_csrf(request, session)
    number = form.get("number", "")
    listed = await run_in_threadpool(_listed, request, number)
    if listed is None or not await run_in_threadpool(
        _change, request, session, listed, opted_out=False
    ):
        return render(
            request, "optouts.html", session, status=404, view="gone", listed_number=number
        )
    return RedirectResponse("/opt-outs?notice=removed", status_code=303)


def number_badge(
    service: Service, number: str | None, language: str, zone: tzinfo = UTC
) -> str | None:
    """The badge of `number` if it opted out (e.g. the number a request's replies go to)."""
    return badges_for(service, [number], language, zone).get(number or "")


def _list_badges(request: Request, rows: Iterable[Any], language: str) -> dict[str, str]:
    """For the requests list: each row's customer number -> its badge, if it opted out."""
    service: Service = request.app.state.service
    zone = page_time_zone(request, getattr(request.state, "session", None))
    return badges_for(service, (row.customer_number for row in rows), language, zone)


# The requests list asks while it renders: one query for the page's numbers.
environment.globals["opt_out_badges"] = _list_badges
