"""Changing routes and explaining them: what the API, the Routes screen and `smsdesk routes`
share.

Writes go through the writer with an audit entry (`store.routes`); afterwards this process's
cached SMS configuration (which carries the routing table) is dropped, so the next accepted
message routes by the change. `explained` builds a message's routing facts as accepting does
(`outbox.accept.message_facts`) and asks `outbox.routing.explain`, which makes the same
choice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection as Db
from sqlalchemy.engine import Engine

from smsdesk.domain.audit import Actor
from smsdesk.domain.routing import Route
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.outbox.accept import NewMessage, message_facts
from smsdesk.outbox.routing import explain, table_of
from smsdesk.store import connection_health
from smsdesk.store import routes as route_store
from smsdesk.store.audit import AuditTrail
from smsdesk.store.connections import ConnectionStore
from smsdesk.store.writer import Writer

T = TypeVar("T")
LISTS = ("countries", "prefixes", "numbers", "senders", "priorities", "api_key_ids", "tags")


class _Configuration(Protocol):
    @property
    def connections(self) -> ConnectionStore: ...

    def load(self) -> SmsConfiguration: ...

    def forget(self) -> None: ...


class RouteHost(Protocol):
    """What changing and explaining routes needs of the running process; the service is one."""

    @property
    def engine(self) -> Engine: ...
    @property
    def writer(self) -> Writer: ...
    @property
    def settings(self) -> _Configuration: ...
    @property
    def trail(self) -> AuditTrail: ...
    @property
    def clock(self) -> Callable[[], float]: ...


def route_changes(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Submitted route fields as `Route` field values (lists as tuples, connections named)."""
    changes: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "connections":
            changes["connection_ids"] = tuple(value or ())
        elif name in LISTS:
            changes[name] = tuple(value or ())
        elif name in ("name", "enabled", "sender_override", "price_per_segment", "currency"):
            changes[name] = value
        elif name == "position":
            changes[name] = int(value or 0)
    return changes


def route_of(fields: Mapping[str, Any], connections: Sequence[str]) -> Route:
    """A new route from submitted fields (checked when it is saved)."""
    values = route_changes({**fields, "connections": connections})
    return Route(id="", **{"name": "", "position": 0, **values})


def _forgetting(host: RouteHost, job: Callable[[Db], T]) -> T:
    try:
        return host.writer.run_sync(job)
    finally:
        host.settings.forget()


def saved_route(host: RouteHost, actor: Actor, route: Route, before: Route | None) -> Route:
    """Store a new route (`before` None) or the changes from `before`; DomainError names the
    field that is wrong."""
    now = host.clock()
    if before is None:
        return _forgetting(
            host,
            lambda c: route_store.create_route(c, route, now, trail=host.trail, actor=actor),
        )
    changes = {
        name: getattr(route, name)
        for name in route_store.EDITABLE
        if getattr(route, name) != getattr(before, name)
    }
    return _forgetting(
        host,
        lambda c: route_store.update_route(
            c, before.id, changes, now, trail=host.trail, actor=actor
        ),
    )


def delete(host: RouteHost, actor: Actor, route_id: str) -> bool:
    """Remove a route; False when there was none."""
    return bool(
        _forgetting(
            host, lambda c: route_store.delete_route(c, route_id, trail=host.trail, actor=actor)
        )
    )


def reorder(host: RouteHost, actor: Actor, route_ids: Sequence[str]) -> tuple[Route, ...]:
    """Put every route in this order."""
    now = host.clock()
    return tuple(
        _forgetting(
            host,
            lambda c: route_store.reorder_routes(c, route_ids, now, trail=host.trail, actor=actor),
        )
    )


def moved(host: RouteHost, actor: Actor, route_id: str, step: int) -> tuple[Route, ...]:
    """Move one route up (step -1) or down (+1) by one place."""
    with host.engine.connect() as conn:
        ids = [r.id for r in route_store.load_routes(conn)]
    if route_id not in ids:
        raise route_store.RouteNotFound(route_id)
    at = ids.index(route_id)
    to = min(max(at + step, 0), len(ids) - 1)
    ids.insert(to, ids.pop(at))
    return reorder(host, actor, ids)


def all_routes(host: RouteHost) -> tuple[Route, ...]:
    with host.engine.connect() as conn:
        return route_store.load_routes(conn)


def get(host: RouteHost, id_or_name: str) -> Route | None:
    """A route by id, else by name (any case)."""
    found = all_routes(host)
    by_id = next((r for r in found if r.id == id_or_name), None)
    wanted = id_or_name.casefold()
    return by_id or next((r for r in found if r.name.casefold() == wanted), None)


def explained(host: RouteHost, message: Mapping[str, Any]) -> dict[str, Any]:
    """Which route and connections a message (to, sender, priority, api_key_id, tag, text)
    would take now, and which of them would be skipped; DomainError for an invalid field."""
    config = host.settings.load()
    request = NewMessage(
        to=str(message["to"]),
        text=str(message.get("text") or "x"),
        sender=message.get("sender"),
        priority=message.get("priority"),
        tag=message.get("tag"),
    )
    facts = message_facts(request, config, api_key_id=message.get("api_key_id") or None)
    with host.engine.connect() as conn:
        health = connection_health.states(conn)
    table = table_of(config)
    answer = explain(table, facts, health, config)
    skipped = {s.connection_id: s.reason for s in answer.skipped}
    names = {c.id: c for c in table.connections}
    choice = answer.choice
    return {
        "route": {
            "id": choice.route_id,
            "name": choice.route_name,
            "matched": choice.matched,
        },
        "country": facts.country,
        "sender": choice.sender,
        "estimated_cost": None if choice.estimated_cost is None else str(choice.estimated_cost),
        "currency": choice.currency,
        "first": None if answer.first is None else answer.first.id,
        "connections": [
            {
                "id": cid,
                "name": names[cid].name if cid in names else cid,
                "module": names[cid].module if cid in names else None,
                "state": health[cid].state if cid in health else "closed",
                "skipped": skipped.get(cid),
            }
            for cid in answer.plan
        ],
    }
