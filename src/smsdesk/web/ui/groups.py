"""The Groups screen (/groups, administrators): groups, their members, and routing rules.

Every change goes through `conversations.groups`, as the API and the CLI do; a refusal shows
the page again with the reason, in the page's language, beside the form that was sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smsdesk.conversations import business_hours, groups
from smsdesk.domain.audit import Actor
from smsdesk.service import Service
from smsdesk.store import groups as group_store
from smsdesk.store.users import WebSession
from smsdesk.web.actors import user_actor
from smsdesk.web.auth import service_of
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.render import render
from smsdesk.web.ui.session import admin_session, form_with_csrf, page_language

router = APIRouter(include_in_schema=False)
NOTICES = ("added", "saved", "deleted")


def _load(request: Request) -> dict[str, Any]:
    service = service_of(request)
    with service.engine.connect() as conn:
        found = group_store.list_groups(conn)
        members = {g.id: group_store.members(conn, g.id) for g in found}
        users = group_store.all_users(conn)
        rules = group_store.list_rules(conn)
    hours = business_hours.all_hours(service)
    return {
        "groups": found,
        "members": members,
        "users": users,
        "rules": rules,
        "hours": hours,
        "weekdays": business_hours.WEEKDAYS,
    }


async def _page(
    request: Request,
    session: WebSession,
    *,
    status: int = 200,
    notice: str | None = None,
    problem: str | None = None,
    problem_at: str | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    data = await run_in_threadpool(_load, request)
    return render(
        request,
        "groups.html",
        session,
        status=status,
        notice=notice,
        problem=problem,
        problem_at=problem_at,
        typed=typed or {},
        rule_kinds=groups.RULE_KINDS,
        **data,
    )


@router.get("/groups")
async def group_list(
    request: Request,
    notice: str = Query("", max_length=20),
    session: WebSession = Depends(admin_session),
) -> Response:
    return await _page(request, session, notice=notice if notice in NOTICES else None)


Work = Callable[[Service, Actor, dict[str, str]], object]


async def _change(
    request: Request, session: WebSession, where: str, notice: str, work: Work
) -> Response:
    """Run a change from a form as the signed-in administrator; a refusal shows the page with
    the reason beside `where`, a change done goes back to the list with `notice`."""
    service = service_of(request)
    actor = user_actor(request, session)
    form = await form_with_csrf(request, session)
    try:
        await run_in_threadpool(work, service, actor, form)
    except (groups.GroupProblem, business_hours.HoursProblem) as exc:
        gettext = translations(page_language(request, session)).gettext
        reason = str(gettext(exc.msgid)).format(**exc.params)
        return await _page(
            request, session, status=422, problem=reason, problem_at=where, typed=form
        )
    except groups.GroupNotFound:
        return await _page(request, session, status=404, problem_at="missing")
    return RedirectResponse(f"/groups?notice={notice}", status_code=303)


# -- routing rules (before /groups/{group_id}, which would match "rules") ----------------------


def _add_rule(service: Service, actor: Actor, form: dict[str, str]) -> None:
    groups.add_rule(
        service, actor, form.get("kind", ""), form.get("value", ""), form.get("group", "")
    )


@router.post("/groups/rules")
async def rule_add(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    return await _change(request, session, "new-rule", "added", _add_rule)


@router.post("/groups/rules/{rule_id}/move")
async def rule_move(
    request: Request, rule_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    def work(service: Service, actor: Actor, form: dict[str, str]) -> None:
        groups.move_rule(service, actor, rule_id, -1 if form.get("step") == "up" else 1)

    return await _change(request, session, f"rule-{rule_id}", "saved", work)


@router.post("/groups/rules/{rule_id}/delete")
async def rule_delete(
    request: Request, rule_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    def work(service: Service, actor: Actor, _form: dict[str, str]) -> None:
        groups.delete_rule(service, actor, rule_id)

    return await _change(request, session, f"rule-{rule_id}", "deleted", work)


# -- groups and members ------------------------------------------------------------------------


def _add_group(service: Service, actor: Actor, form: dict[str, str]) -> None:
    groups.create_group(
        service,
        actor,
        form.get("name", ""),
        form.get("description", ""),
        form.get("round_robin") == "on",
    )


@router.post("/groups")
async def group_add(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    return await _change(request, session, "new-group", "added", _add_group)


@router.post("/groups/{group_id}")
async def group_save(
    request: Request, group_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    def work(service: Service, actor: Actor, form: dict[str, str]) -> None:
        groups.change_group(
            service,
            actor,
            group_id,
            name=form.get("name", ""),
            description=form.get("description", ""),
            round_robin=form.get("round_robin") == "on",
        )

    return await _change(request, session, f"group-{group_id}", "saved", work)


@router.post("/groups/{group_id}/hours")
async def group_hours_save(
    request: Request, group_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    def work(service: Service, actor: Actor, form: dict[str, str]) -> None:
        business_hours.set_hours(
            service,
            actor,
            group_id,
            time_zone=form.get("time_zone", ""),
            week={day: form.get(day, "") for day in business_hours.WEEKDAYS},
            holidays=[form.get("holidays", "")],
            reply=form.get("out_of_hours_reply", ""),
        )

    return await _change(request, session, f"hours-{group_id}", "saved", work)


@router.post("/groups/{group_id}/delete")
async def group_delete(
    request: Request, group_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    def work(service: Service, actor: Actor, _form: dict[str, str]) -> None:
        groups.delete_group(service, actor, group_id)

    return await _change(request, session, f"group-{group_id}", "deleted", work)


@router.post("/groups/{group_id}/members")
async def member_add(
    request: Request, group_id: str, session: WebSession = Depends(admin_session)
) -> Response:
    def work(service: Service, actor: Actor, form: dict[str, str]) -> None:
        wanted = form.get("user_id", "")
        if not wanted.isdigit():
            raise groups.GroupProblem("Choose a user to add.", field="user")
        groups.add_member(service, actor, group_id, int(wanted))

    return await _change(request, session, f"group-{group_id}", "saved", work)


@router.post("/groups/{group_id}/members/{user_id}/remove")
async def member_remove(
    request: Request, group_id: str, user_id: int, session: WebSession = Depends(admin_session)
) -> Response:
    def work(service: Service, actor: Actor, _form: dict[str, str]) -> None:
        groups.remove_member(service, actor, group_id, user_id)

    return await _change(request, session, f"group-{group_id}", "saved", work)
