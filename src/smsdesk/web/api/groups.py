"""Groups of agents and routing rules: /api/v1/groups and /api/v1/routing-rules.

Any key reads; changes need an admin key. A group is named in paths by its id or its name.
Deleting a group that still holds open or pending requests answers 409.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from smsdesk.conversations import business_hours, groups
from smsdesk.domain.times import iso
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.actors import key_actor
from smsdesk.web.auth import admin_key, api_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1/groups", tags=["groups"])
rules_router = APIRouter(prefix="/api/v1/routing-rules", tags=["groups"])


class NewGroup(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(..., max_length=1000, examples=["Billing"])
    description: str = Field("", max_length=1000)
    round_robin: bool = Field(
        False, description="Give each new request to the present member assigned longest ago."
    )


class GroupPatch(BaseModel):
    model_config = {"extra": "forbid"}

    name: str | None = Field(None, max_length=1000)
    description: str | None = Field(None, max_length=1000)
    round_robin: bool | None = None
    time_zone: str | None = Field(None, max_length=100, examples=["Europe/Amsterdam"])
    hours: dict[str, str | list[str]] | None = Field(
        None,
        description="The whole week: mon..sun to intervals of the local clock, e.g. "
        '{"mon": ["09:00-12:00", "13:00-17:30"]}; days left out are closed; {} is open '
        "around the clock. An interval ends at 24:00 at the latest.",
    )
    holidays: list[str] | None = Field(
        None, max_length=1000, description="Dates closed all day.", examples=[["2026-12-25"]]
    )
    out_of_hours_reply: str | None = Field(
        None,
        max_length=2000,
        description="The SMS a customer gets once per closed stretch; empty for none.",
    )


HOURS_FIELDS = ("time_zone", "hours", "holidays", "out_of_hours_reply")


class NewMember(BaseModel):
    model_config = {"extra": "forbid"}

    user: str = Field(..., max_length=100, description="The user's name.")


class NewRule(BaseModel):
    model_config = {"extra": "forbid"}

    kind: str = Field(..., description="endpoint_code, keyword or receiving_number")
    value: str = Field(..., max_length=100, examples=["BILLING"])
    group: str = Field(..., max_length=100, description="The group's id or name.")


class RuleOrder(BaseModel):
    model_config = {"extra": "forbid"}

    ids: list[str] = Field(..., max_length=1000, description="Every rule's id, first tried first.")


def group_out(group: groups.Group, members: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "round_robin": group.round_robin,
        "created_at": iso(group.created_at),
        "updated_at": iso(group.updated_at),
    }
    if members is not None:
        body["member_count"] = members
    return body


def hours_out(found: business_hours.GroupHours) -> dict[str, Any]:
    hours = found.hours
    return {
        "time_zone": hours.time_zone,
        "hours": {
            day: [str(interval) for interval in hours.week[index]]
            for index, day in enumerate(business_hours.WEEKDAYS)
        },
        "holidays": [d.isoformat() for d in sorted(hours.holidays)],
        "out_of_hours_reply": found.reply,
    }


def member_out(member: groups.Member) -> dict[str, Any]:
    return {
        "user_id": member.user_id,
        "username": member.username,
        "role": member.role,
        "last_assigned_at": iso(member.last_assigned_at) if member.last_assigned_at else None,
        "last_active_at": iso(member.last_active_at) if member.last_active_at else None,
    }


def rule_out(rule: groups.Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "position": rule.position,
        "kind": rule.kind,
        "value": rule.value,
        "group": {"id": rule.group_id, "name": rule.group_name},
    }


@contextmanager
def answers() -> Iterator[None]:
    """404 for an unknown group, user or rule; 409 for a group that still holds requests."""
    try:
        yield
    except groups.GroupNotFound as exc:
        raise ApiError(404, "not_found", exc.message) from None
    except groups.GroupProblem as exc:
        if exc.field == "group":
            raise ApiError(409, "conflict", exc.message) from None
        raise


@router.get("", summary="List groups by name")
def list_groups(request: Request, _: ApiKey = Depends(api_key)) -> Json:
    found = groups.list_groups(service_of(request))
    return Json({"groups": [group_out(g, count) for g, count in found]})


@router.post("", status_code=201, summary="Add a group")
def create_group(body: NewGroup, request: Request, key: ApiKey = Depends(admin_key)) -> Json:
    created = groups.create_group(
        service_of(request), key_actor(request, key), body.name, body.description, body.round_robin
    )
    return Json(group_out(created, 0), 201)


@router.get("/{group}", summary="A group with its members")
def get_group(group: str, request: Request, _: ApiKey = Depends(api_key)) -> Json:
    with answers():
        found, members = groups.group_members(service_of(request), group)
        hours = business_hours.hours_of_group(service_of(request), found.id)
    return Json(
        {
            **group_out(found, len(members)),
            **hours_out(hours),
            "members": [member_out(m) for m in members],
        }
    )


@router.patch(
    "/{group}",
    summary="Rename a group, change its description, round-robin, opening hours or answer",
)
def change_group(
    group: str, body: GroupPatch, request: Request, key: ApiKey = Depends(admin_key)
) -> Json:
    service = service_of(request)
    given = body.model_dump(exclude_none=True)
    hours = {name: given.pop(name) for name in HOURS_FIELDS if name in given}
    with answers():
        changed = groups.change_group(service, key_actor(request, key), group, **given)
        if hours:
            business_hours.set_hours(
                service,
                key_actor(request, key),
                changed.id,
                time_zone=hours.get("time_zone"),
                week=hours.get("hours"),
                holidays=hours.get("holidays"),
                reply=hours.get("out_of_hours_reply"),
            )
    return get_group(changed.id, request)


@router.delete("/{group}", status_code=204, summary="Delete a group without open requests")
def delete_group(group: str, request: Request, key: ApiKey = Depends(admin_key)) -> Response:
    with answers():
        groups.delete_group(service_of(request), key_actor(request, key), group)
    return Response(status_code=204)


@router.get("/{group}/members", summary="A group's members")
def list_members(group: str, request: Request, _: ApiKey = Depends(api_key)) -> Json:
    with answers():
        _found, members = groups.group_members(service_of(request), group)
    return Json({"members": [member_out(m) for m in members]})


@router.post("/{group}/members", status_code=201, summary="Add a user to a group")
def add_member(
    group: str, body: NewMember, request: Request, key: ApiKey = Depends(admin_key)
) -> Json:
    """201 when the user was added, 200 when they were a member already."""
    service = service_of(request)
    with answers():
        added = groups.add_member(service, key_actor(request, key), group, body.user)
        _found, members = groups.group_members(service, group)
    return Json({"members": [member_out(m) for m in members]}, 201 if added else 200)


@router.delete("/{group}/members/{user}", status_code=204, summary="Take a user out of a group")
def remove_member(
    group: str, user: str, request: Request, key: ApiKey = Depends(admin_key)
) -> Response:
    with answers():
        removed = groups.remove_member(service_of(request), key_actor(request, key), group, user)
    if not removed:
        raise ApiError(404, "not_found", f"'{user}' is not a member of group '{group}'.")
    return Response(status_code=204)


# -- routing rules -----------------------------------------------------------------------------


@rules_router.get("", summary="Routing rules, first tried first")
def list_rules(request: Request, _: ApiKey = Depends(api_key)) -> Json:
    return Json({"rules": [rule_out(r) for r in groups.list_rules(service_of(request))]})


@rules_router.post("", status_code=201, summary="Add a routing rule (tried last)")
def add_rule(body: NewRule, request: Request, key: ApiKey = Depends(admin_key)) -> Json:
    with answers():
        rule = groups.add_rule(
            service_of(request), key_actor(request, key), body.kind, body.value, body.group
        )
    return Json(rule_out(rule), 201)


@rules_router.put("/order", summary="Put the routing rules in a new order")
def reorder_rules(body: RuleOrder, request: Request, key: ApiKey = Depends(admin_key)) -> Json:
    rules = groups.reorder_rules(service_of(request), key_actor(request, key), body.ids)
    return Json({"rules": [rule_out(r) for r in rules]})


@rules_router.delete("/{rule_id}", status_code=204, summary="Delete a routing rule")
def delete_rule(rule_id: str, request: Request, key: ApiKey = Depends(admin_key)) -> Response:
    with answers():
        groups.delete_rule(service_of(request), key_actor(request, key), rule_id)
    return Response(status_code=204)
