"""Routes in the database: `routes` (match fields as JSON lists) and `route_connections` (each
route's connections in failover order).

Values are checked by `domain.routing.check_route` here, before they are written; every change
is audited by field name only (a route's numbers are personal data). Writes take the writer's
connection (they never commit); reads any connection.

`attach_routing` is what the configuration store calls when it loads the SMS configuration, so
every caller of `outbox.accept.prepare_message` routes with the current table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.domain.audit import Actor
from smsdesk.domain.connections import Connection as SmsConnection
from smsdesk.domain.errors import DomainError
from smsdesk.domain.ids import new_id
from smsdesk.domain.routing import MATCH_FIELDS, Route, RouteProblem, RoutingTable, check_route
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.store.audit import AuditTrail
from smsdesk.store.tables import connections, route_connections, routes

r = routes
rc = route_connections
EDITABLE = frozenset(f.name for f in fields(Route)) - {"id", "position"}


class RouteNotFound(LookupError):
    """There is no route with this id (deleted meanwhile)."""


def _route(row: Any, connection_ids: Sequence[str]) -> Route:
    match: dict[str, Any] = {name: tuple(json.loads(getattr(row, name))) for name in MATCH_FIELDS}
    return Route(
        id=row.id,
        name=row.name,
        position=row.position,
        enabled=bool(row.enabled),
        connection_ids=tuple(connection_ids),
        sender_override=row.sender_override,
        price_per_segment=row.price_per_segment,
        currency=row.currency,
        **match,
    )


def load_routes(conn: Connection) -> tuple[Route, ...]:
    """Every route in position order, with its connections in failover order."""
    plans: dict[str, list[str]] = {}
    for route_id, connection_id in conn.execute(
        sa.select(rc.c.route_id, rc.c.connection_id).order_by(rc.c.route_id, rc.c.position)
    ):
        plans.setdefault(route_id, []).append(connection_id)
    rows = conn.execute(sa.select(r).order_by(r.c.position))
    return tuple(_route(row, plans.get(row.id, ())) for row in rows)


def get_route(conn: Connection, route_id: str) -> Route | None:
    row = conn.execute(sa.select(r).where(r.c.id == route_id)).first()
    if row is None:
        return None
    ids = conn.execute(
        sa.select(rc.c.connection_id).where(rc.c.route_id == route_id).order_by(rc.c.position)
    ).scalars()
    return _route(row, list(ids))


def routing_table(conn: Connection, stored: Sequence[SmsConnection]) -> RoutingTable:
    """The routes as stored now, with the connections they may name."""
    return RoutingTable(load_routes(conn), tuple(stored))


def attach_routing(
    conn: Connection, config: SmsConfiguration, stored: Sequence[SmsConnection]
) -> SmsConfiguration:
    """`config` with the current routing table attached (read in `conn`), for accepting."""
    config._routing = routing_table(conn, stored)
    return config


def _resolved_connections(conn: Connection, wanted: Sequence[str]) -> tuple[str, ...]:
    """Connection ids for ids or names; DomainError naming the first one not stored."""
    stored = conn.execute(sa.select(connections.c.id, connections.c.name)).all()
    by_id = {row.id: row.id for row in stored}
    by_name = {row.name.casefold(): row.id for row in stored}
    resolved: list[str] = []
    for item in wanted:
        found = by_id.get(item) or by_name.get(item.casefold())
        if found is None:
            raise RouteProblem(
                "There is no connection '{name}'.", field="connection_ids", name=item
            )
        resolved.append(found)
    return tuple(dict.fromkeys(resolved))


def _values(route: Route, now: float) -> dict[str, Any]:
    values: dict[str, Any] = {name: json.dumps(list(getattr(route, name))) for name in MATCH_FIELDS}
    values.update(
        name=route.name,
        enabled=route.enabled,
        sender_override=route.sender_override,
        price_per_segment=route.price_per_segment,
        currency=route.currency,
        updated_at=now,
    )
    return values


def _write_connections(conn: Connection, route_id: str, connection_ids: Sequence[str]) -> None:
    conn.execute(rc.delete().where(rc.c.route_id == route_id))
    conn.execute(
        rc.insert(),
        [
            {"route_id": route_id, "position": index, "connection_id": cid}
            for index, cid in enumerate(connection_ids)
        ],
    )


def _changed(before: Route | None, after: Route) -> list[str]:
    names = sorted(EDITABLE | {"position"})
    if before is None:
        blank = Route(id="", name="", position=after.position)
        return [n for n in names if getattr(after, n) != getattr(blank, n)]
    return [n for n in names if getattr(after, n) != getattr(before, n)]


def create_route(
    conn: Connection, route: Route, now: float, *, trail: AuditTrail, actor: Actor
) -> Route:
    """Store a new route; `position` 0 (or one already taken) puts it last. Audited."""
    checked = check_route(route)
    checked = replace(checked, connection_ids=_resolved_connections(conn, checked.connection_ids))
    taken = set(conn.execute(sa.select(r.c.position)).scalars())
    position = checked.position
    if position <= 0 or position in taken:
        position = max(taken, default=0) + 1
    created = replace(checked, id=new_id(), position=position)
    conn.execute(
        r.insert().values(id=created.id, position=position, created_at=now, **_values(created, now))
    )
    _write_connections(conn, created.id, created.connection_ids)
    trail.record(
        conn,
        actor,
        "route.created",
        target_kind="route",
        target_id=created.id,
        details={"fields": _changed(None, created)},
    )
    return created


def update_route(
    conn: Connection,
    route_id: str,
    changes: Mapping[str, Any],
    now: float,
    *,
    trail: AuditTrail,
    actor: Actor,
) -> Route:
    """Change a route's fields (not its position: see `reorder_routes`). Audited by name."""
    unknown = set(changes) - EDITABLE
    if unknown:
        raise DomainError(
            f"Only {', '.join(sorted(EDITABLE))} can be changed, not {', '.join(sorted(unknown))}.",
            field=sorted(unknown)[0],
        )
    before = get_route(conn, route_id)
    if before is None:
        raise RouteNotFound(route_id)
    typed: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
    after = check_route(replace(before, **typed))
    after = replace(after, connection_ids=_resolved_connections(conn, after.connection_ids))
    changed = _changed(before, after)
    if not changed:
        return before
    conn.execute(r.update().where(r.c.id == route_id).values(**_values(after, now)))
    if "connection_ids" in changed:
        _write_connections(conn, route_id, after.connection_ids)
    trail.record(
        conn,
        actor,
        "route.changed",
        target_kind="route",
        target_id=route_id,
        details={"fields": changed},
    )
    return after


def delete_route(conn: Connection, route_id: str, *, trail: AuditTrail, actor: Actor) -> bool:
    """Remove a route (its messages keep the route's name); False when there was none."""
    route = get_route(conn, route_id)
    if route is None:
        return False
    conn.execute(rc.delete().where(rc.c.route_id == route_id))
    conn.execute(r.delete().where(r.c.id == route_id))
    trail.record(conn, actor, "route.deleted", target_kind="route", target_id=route_id)
    return True


def reorder_routes(
    conn: Connection, route_ids: Sequence[str], now: float, *, trail: AuditTrail, actor: Actor
) -> tuple[Route, ...]:
    """Put the routes in this order (every route id exactly once). Audited."""
    current = [row.id for row in conn.execute(sa.select(r.c.id).order_by(r.c.position))]
    if sorted(route_ids) != sorted(current) or len(set(route_ids)) != len(route_ids):
        raise RouteProblem("Give every route exactly once, in the new order.", field="route_ids")
    if list(route_ids) != current:
        # Two steps, so the unique positions never collide while they move.
        for index, route_id in enumerate(route_ids):
            conn.execute(r.update().where(r.c.id == route_id).values(position=-(index + 1)))
        for index, route_id in enumerate(route_ids):
            conn.execute(
                r.update().where(r.c.id == route_id).values(position=index + 1, updated_at=now)
            )
        trail.record(
            conn, actor, "routes.reordered", target_kind="route", details={"count": len(route_ids)}
        )
    return load_routes(conn)
