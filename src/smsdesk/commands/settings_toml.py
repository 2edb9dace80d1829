"""The `[[connections]]` and `[[routes]]` entries of `smsdesk settings export` and `import`.

An exported connection shows its secrets masked; importing it with the mask (or blank) keeps
the stored secret. Entries are matched by id, else by name: a match is changed, anything else
is added.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from smsdesk import route_edits
from smsdesk.connection_edits import changes_of, check_connection, shown
from smsdesk.domain.audit import Actor
from smsdesk.domain.connections import Connection
from smsdesk.domain.routing import Route
from smsdesk.service import Service


def connection_entry(connection: Connection) -> dict[str, Any]:
    """A connection as a TOML entry (the default is chosen with `connections default`)."""
    entry = shown(connection)
    entry.pop("version")
    entry.pop("is_default")
    return entry


def import_connection(service: Service, entry: dict[str, Any]) -> Connection:
    """Change the connection the entry names (by id, else name), or add it."""
    store = service.settings.connections
    wanted = str(entry.get("id") or entry.get("name") or "")
    stored = store.get(wanted) if wanted else None
    if stored is None and entry.get("name"):
        stored = store.get(str(entry["name"]))
    body = {k: v for k, v in entry.items() if k != "id"}
    checked = check_connection(body, stored)
    if stored is None:
        return store.create(checked, Actor.cli())
    return store.update(stored.id, changes_of(checked), Actor.cli())


def route_entry(service: Service, route: Route) -> dict[str, Any]:
    """A route as a TOML entry; its connections by name."""
    names = {c.id: c.name for c in service.settings.connections.all()}
    entry: dict[str, Any] = {"id": route.id, "name": route.name, "enabled": route.enabled}
    for field in route_edits.LISTS:
        entry[field] = list(getattr(route, field))
    entry["connections"] = [names.get(c, c) for c in route.connection_ids]
    entry["sender_override"] = route.sender_override
    if route.price_per_segment is not None:
        entry["price_per_segment"] = str(route.price_per_segment)
        entry["currency"] = route.currency
    return entry


def import_route(service: Service, entry: dict[str, Any]) -> Route:
    """Change the route the entry names (by id, else name), or add it last."""
    found = route_edits.get(service, str(entry.get("id") or "")) if entry.get("id") else None
    if found is None and entry.get("name"):
        found = route_edits.get(service, str(entry["name"]))
    fields = {k: v for k, v in entry.items() if k not in ("id", "position")}
    if found is None:
        new = route_edits.route_of(fields, list(entry.get("connections") or []))
        return route_edits.saved_route(service, Actor.cli(), new, None)
    wanted = replace(found, **route_edits.route_changes(fields))
    return route_edits.saved_route(service, Actor.cli(), wanted, found)
