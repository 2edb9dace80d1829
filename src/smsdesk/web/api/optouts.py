"""The opt-out list (numbers that texted STOP, or were added by an administrator): /api/v1/opt-outs.

Anyone with an API key may read the list; adding and removing numbers needs an admin key.
Each change is an `optout.changed` event for webhook subscribers, and an entry in the audit
trail naming the number only by a keyed hash.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from smsdesk.customers import normalise_for_lookup
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.domain.times import iso
from smsdesk.service import Service
from smsdesk.store import optouts
from smsdesk.store.apikeys import ApiKey
from smsdesk.store.optout_changes import change_by_person
from smsdesk.web.actors import key_actor
from smsdesk.web.auth import admin_key, api_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1/opt-outs", tags=["opt-outs"])


class NewOptOut(BaseModel):
    model_config = {"extra": "forbid"}

    number: str = Field(
        ...,
        max_length=40,
        description="Mobile number; without country code the default country code is added.",
        examples=["+31612345678"],
    )


def opt_out_out(row: optouts.OptOutRow) -> dict[str, Any]:
    return {
        "number": row.number,
        "keyword": row.keyword,
        "source": row.source,
        "inbound_id": row.inbound_id,
        "created_at": iso(row.created_at),
    }


@router.get("", summary="Numbers that opted out, newest first")
def list_opt_outs(
    request: Request,
    _: ApiKey = Depends(api_key),
    search: str | None = Query(None, max_length=40, description="Part of a number"),
    cursor: str | None = Query(None, description="The next_cursor of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
) -> Json:
    service = service_of(request)
    try:
        with service.engine.connect() as conn:
            rows = optouts.list_opt_outs(conn, before=cursor, limit=limit + 1, contains=search)
    except ValueError as exc:
        raise ApiError(422, "invalid_cursor", str(exc)) from None
    page = rows[:limit]
    next_cursor = optouts.opt_out_cursor(page[-1]) if len(rows) > limit else None
    return Json({"opt_outs": [opt_out_out(r) for r in page], "next_cursor": next_cursor})


@router.post("", summary="Opt a number out of SMS")
def add_opt_out(body: NewOptOut, request: Request, key: ApiKey = Depends(admin_key)) -> Json:
    """201 when the number was added; 200 when it was on the list already (kept as it was)."""
    service = service_of(request)
    number = normalise_for_lookup(service, body.number)
    added = _change(service, key_actor(request, key), number, opted_out=True)
    with service.engine.connect() as conn:
        row = optouts.get_opt_out(conn, number)
    if row is None:  # removed again in between
        raise ApiError(409, "conflict", "The number was removed meanwhile; try again.")
    return Json({**opt_out_out(row), "added": added}, 201 if added else 200)


def _change(service: Service, actor: Actor, number: str, *, opted_out: bool) -> bool:
    """Add or remove the number, with its audit entry (naming the number by a keyed hash)."""
    now = service.clock()
    return service.writer.run_sync(
        lambda conn: change_by_person(
            conn,
            service.trail,
            actor,
            number,
            opted_out=opted_out,
            source="api",
            now=now,
            events=service.events,
        )
    )


def _listed_number(service: Service, raw: str) -> str:
    """The number normalised; or as written, if it is on the list but no longer valid."""
    try:
        return normalise_for_lookup(service, raw)
    except DomainError:
        with service.engine.connect() as conn:
            if optouts.get_opt_out(conn, raw.strip()) is not None:
                return raw.strip()
        raise


@router.delete("/{number}", status_code=204, summary="Let a number receive SMS again")
def remove_opt_out(number: str, request: Request, key: ApiKey = Depends(admin_key)) -> Response:
    service = service_of(request)
    e164 = _listed_number(service, number)
    removed = _change(service, key_actor(request, key), e164, opted_out=False)
    if not removed:
        raise ApiError(404, "not_found", f"{e164} is not on the opt-out list.")
    return Response(status_code=204)
