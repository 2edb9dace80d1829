"""The requests list with its overviews, and assigning a request from its page.

Overviews: *Mine*, *Unassigned*, *My groups*, *Waiting for the customer* and *All*, each with
its count of open and pending requests; a request whose customer wrote after the viewing user
last opened it is marked unread. The counts and the list reload live when requests change.
On a request's page an "Assign" form sets the owner and the group (`conversations.assignment`
decides what an agent may choose); opening the page marks the request read for that user.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations import assignment
from smsdesk.conversations.groups import GroupProblem
from smsdesk.conversations.requests import NotFound
from smsdesk.store import groups as group_store
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.render import render
from smsdesk.web.ui.session import form_with_csrf, page_language, page_session

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
VIEWS = group_store.VIEWS
STATUS_FILTERS = ("open", "pending", "active", "closed", "all")


@router.get("/requests")
async def request_list(
    request: Request,
    view: str = Query("all", max_length=20),
    status: str | None = Query(None, max_length=10),
    q: str = Query("", max_length=100),
    cursor: str | None = Query(None, max_length=26),
    session: WebSession = Depends(page_session),
) -> Response:
    """A view (all by default) narrowed by status (open for All, open and pending for the
    others, unless chosen) and a search."""
    view = view if view in VIEWS else "all"
    default_status = "open" if view == "all" else "active"
    status = status if status in STATUS_FILTERS else default_status
    search = q.strip()
    service = service_of(request)
    user_id = session.user.id

    def load() -> tuple[list[Any], dict[str, int]]:
        with service.engine.connect() as conn:
            rows = group_store.find_in_view(
                conn, view, user_id, status, search, cursor, PAGE_SIZE + 1
            )
            return rows, group_store.view_counts(conn, user_id)

    rows, counts = await run_in_threadpool(load)
    page = rows[:PAGE_SIZE]
    return render(
        request,
        "requests.html",
        session,
        rows=page,
        view=view,
        views=VIEWS,
        counts=counts,
        chosen_status=status,
        statuses=STATUS_FILTERS,
        search=search,
        next_cursor=page[-1].id if len(rows) > PAGE_SIZE else None,
    )


# -- a request's page: who works it -----------------------------------------------------------


def assignment_page(request: Request, conn: Any, ticket: Any) -> dict[str, Any]:
    """What the request page's Assign form offers the user looking at it: administrators any
    user and group; agents themselves, the members of their groups, and their own groups."""
    session: WebSession | None = getattr(request.state, "session", None)
    if session is None:
        return {}
    user = session.user
    all_groups = group_store.list_groups(conn)
    if user.is_admin:
        people = group_store.all_users(conn)
        teams = [(g.id, g.name) for g in all_groups]
    else:
        mine = set(group_store.groups_of(conn, user.id))
        names: dict[int, str] = {user.id: user.username}
        for group_id in mine:
            names.update({m.user_id: m.username for m in group_store.members(conn, group_id)})
        people = sorted(names.items(), key=lambda item: item[1].lower())
        teams = [(g.id, g.name) for g in all_groups if g.id in mine]
    if ticket.owner_id is not None and ticket.owner_id not in dict(people):
        people.append((ticket.owner_id, ticket.owner_name or str(ticket.owner_id)))
    if ticket.group_id is not None and ticket.group_id not in dict(teams):
        teams.append((ticket.group_id, ticket.group_name or ticket.group_id))
    return {"assignable_users": people, "assignable_groups": teams}


async def mark_read(request: Request, session: WebSession, request_id: str) -> None:
    """The user has now seen the request's conversation."""
    service = service_of(request)
    now = service.clock()
    await service.writer.run(
        lambda conn: group_store.mark_seen(conn, request_id, session.user.id, now)
    )


def _changed(form: Any, field: str) -> Any:
    """The owner or group the form sends, or KEEP when it is the one the form showed: the
    person did not change it, and someone else may have since."""
    value = form.get(field)
    if value is not None and value == form.get(f"{field}_shown"):
        return assignment.KEEP
    return _choice(value)


def _choice(value: str | None) -> Any:
    """A form's owner or group: KEEP when not sent, None when emptied, else the value."""
    if value is None:
        return assignment.KEEP
    return value.strip() or None


@router.post("/requests/{request_id}/assign")
async def request_assign(
    request: Request, request_id: str, session: WebSession = Depends(page_session)
) -> Response:
    """Set owner and group; "take" assigns the request to the user themselves."""
    form = await form_with_csrf(request, session)
    service = service_of(request)
    owner = str(session.user.id) if form.get("take") else _changed(form, "owner")
    agent = assignment.Agent(session.user.id, session.user.is_admin)

    def work() -> None:
        assignment.assign(
            service,
            user_actor(request, session),
            request_id,
            owner=int(owner) if isinstance(owner, str) and owner.isdigit() else owner,
            group=_changed(form, "group") if not form.get("take") else assignment.KEEP,
            agent=agent,
        )

    try:
        await run_in_threadpool(work)
    except NotFound:
        return render(request, "request.html", session, status=404, missing=True)
    except GroupProblem as exc:
        from smsdesk.web.ui.requests import _show_request

        gettext = translations(page_language(request, session)).gettext
        reason = str(gettext(exc.msgid)).format(**exc.params)
        return await _show_request(
            request, session, request_id, status=422, text="", assign_error=reason
        )
    return RedirectResponse(f"/requests/{request_id}", status_code=303)
