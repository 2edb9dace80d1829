"""Owners, groups and overviews of requests in the API (used by /api/v1/requests).

`GET /api/v1/requests?view=mine|unassigned|my_groups|waiting|all&user=<username>` lists a view
as that user sees it (with `unread`); `mine` and `my_groups` need the user. `PATCH` with `owner`
and/or `group` (null for none) needs an admin key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from pydantic import BaseModel

from smsdesk.conversations import assignment, groups
from smsdesk.conversations.requests import NotFound
from smsdesk.service import Service
from smsdesk.store import groups as group_store
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.actors import key_actor
from smsdesk.web.auth import service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

VIEWS = group_store.VIEWS
VIEW_HELP = (
    "mine, unassigned, my_groups, waiting (pending, or our message was the last) or all; "
    "with user, each request says whether it is unread"
)
STATUSES = ("open", "pending", "closed", "active", "all")


def assignment_out(row: Any) -> dict[str, Any]:
    """The owner and group of a request row (names where the row carries them)."""
    owner_id = getattr(row, "owner_id", None)
    group_id = getattr(row, "group_id", None)
    body: dict[str, Any] = {
        "owner": None
        if owner_id is None
        else {"id": owner_id, "username": getattr(row, "owner_name", None)},
        "group": None
        if group_id is None
        else {"id": group_id, "name": getattr(row, "group_name", None)},
    }
    if hasattr(row, "unread"):
        body["unread"] = bool(row.unread)
    return body


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_field", message, [{"field": field, "message": message}])


def list_view(
    service: Service,
    wanted: tuple[str, str | None, str | None],
    cursor: str | None,
    limit: int,
    request_out: Callable[[Any], dict[str, Any]],
) -> Json:
    """One page of a view, with every view's count of open and pending requests."""
    view, user, status = wanted
    if view not in VIEWS:
        raise _invalid("view", f"view must be one of {', '.join(VIEWS)}.")
    if status is not None and status not in STATUSES:
        raise _invalid("status", f"status must be one of {', '.join(STATUSES)}.")
    with service.engine.connect() as conn:
        user_id = 0
        if user:
            found = group_store.user_by_name(conn, user)
            if found is None:
                raise _invalid("user", f"There is no user '{user}'.")
            user_id = found[0]
        elif view in ("mine", "my_groups"):
            raise _invalid("user", f"The view {view} needs user (a username).")
        rows = group_store.find_in_view(conn, view, user_id, status or "all", "", cursor, limit + 1)
        counts = group_store.view_counts(conn, user_id)
    page = rows[:limit]
    return Json(
        {
            "requests": [{**request_out(r), **assignment_out(r)} for r in page],
            "counts": counts,
            "next_cursor": page[-1].id if len(rows) > limit else None,
        }
    )


def assign_from_api(request: Request, key: ApiKey, request_id: str, changes: BaseModel) -> None:
    """Apply `owner` / `group` if the body named them (admin keys only)."""
    named = changes.model_fields_set & {"owner", "group"}
    if not named:
        return
    if key.role != "admin":
        raise ApiError(403, "forbidden", "This API key may not assign requests; use an admin key.")
    values = changes.model_dump(include=named)
    try:
        assignment.assign(
            service_of(request),
            key_actor(request, key),
            request_id,
            owner=values.get("owner", assignment.KEEP),
            group=values.get("group", assignment.KEEP),
        )
    except NotFound:
        raise
    except groups.GroupProblem as exc:
        raise _invalid(exc.field, exc.message) from None
