"""Who works a request: its owner (a user) and its group (a team).

Administrators, API keys with the admin role and the command line may give a request to any
user and any group. Agents may take a request, give it up, or hand it to someone who shares one
of their groups, and may put it in one of their own groups. Each change is published on the live
feed (the request's screens and lists update), written to the audit trail as
`request.assigned`, and handed to the notifications of "assigned to me".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from smsdesk.conversations.groups import (
    AuditedHost,
    GroupNotFound,
    GroupProblem,
    find_group,
    find_user,
)
from smsdesk.conversations.requests import NotFound
from smsdesk.domain.audit import Actor
from smsdesk.notify.events import queue_for_event
from smsdesk.store import groups as store
from smsdesk.store import requests as request_store

KEEP = object()  # leave the owner or group as it is


@dataclass(frozen=True, slots=True)
class Agent:
    """The person assigning, when it is an agent (whose choices are limited)."""

    user_id: int
    is_admin: bool


@dataclass(frozen=True, slots=True)
class Assignment:
    owner_id: int | None
    owner_name: str | None
    group_id: str | None
    group_name: str | None


def current(conn: Connection, request_id: str) -> Assignment:
    row = store.assignment_of(conn, request_id)
    if row is None:
        raise NotFound(f"There is no request with id '{request_id}'.")
    return Assignment(row.owner_id, row.owner_name, row.group_id, row.group_name)


def _check_agent(conn: Connection, agent: Agent, owner_id: Any, group_id: Any) -> None:
    if agent.is_admin:
        return
    if (
        owner_id is not KEEP
        and owner_id not in (None, agent.user_id)
        and not store.share_a_group(conn, agent.user_id, owner_id)
    ):
        raise GroupProblem(
            "Agents may give a request only to themselves or to someone in one of their groups.",
            field="owner",
        )
    if (
        group_id is not KEEP
        and group_id is not None
        and not store.is_member(conn, group_id, agent.user_id)
    ):
        raise GroupProblem(
            "Agents may put a request only in one of their own groups.", field="group"
        )


def assign(
    host: AuditedHost,
    actor: Actor,
    request_id: str,
    *,
    owner: Any = KEEP,
    group: Any = KEEP,
    agent: Agent | None = None,
) -> Assignment:
    """Set the owner (a user's name or id, None for nobody) and/or the group (id or name, None
    for none); KEEP leaves one as it is."""

    def job(conn: Connection) -> Assignment:
        before = current(conn, request_id)
        owner_id: Any = KEEP
        group_id: Any = KEEP
        if owner is not KEEP and owner is not None:
            try:
                owner_id = find_user(conn, owner)[0]
            except GroupNotFound:
                raise GroupProblem(
                    "There is no user '{name}'.", field="owner", name=owner
                ) from None
        elif owner is None:
            owner_id = None
        if group is not KEEP and group is not None:
            try:
                group_id = find_group(conn, group).id
            except GroupNotFound:
                raise GroupProblem(
                    "There is no group '{name}'.", field="group", name=group
                ) from None
        elif group is None:
            group_id = None
        changes: dict[str, Any] = {}
        if owner_id is not KEEP and owner_id != before.owner_id:
            changes["owner_id"] = owner_id
        if group_id is not KEEP and group_id != before.group_id:
            changes["group_id"] = group_id
        if not changes:
            return before
        if agent is not None:  # only what changes is checked
            _check_agent(conn, agent, changes.get("owner_id", KEEP), changes.get("group_id", KEEP))
        now = host.clock()
        request_store.set_request_fields(conn, request_id, changes, now)
        after = current(conn, request_id)
        host.trail.record(
            conn,
            actor,
            "request.assigned",
            target_kind="request",
            target_id=request_id,
            details={"owner": after.owner_name, "group": after.group_name},
        )
        if "owner_id" in changes and owner_id is not None:
            acting = int(actor.id) if actor.kind == "user" and actor.id else None
            if acting != owner_id:
                assigned_hook(conn, request_id, acting, now)
        return after

    return host.writer.run_sync(job)


def assigned_hook(conn: Connection, request_id: str, actor_user_id: int | None, at: float) -> None:
    """Queue the "assigned to me" notification of the request's new owner (smsdesk.notify)."""
    queue_for_event(conn, "request.assigned", request_id, actor_user_id, at)
