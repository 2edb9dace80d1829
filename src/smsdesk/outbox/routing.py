"""Where an accepted message goes: its connection plan, and explaining that choice.

The routing table (routes and connections) comes with the SMS configuration
(`SmsConfiguration.routing`, attached by the configuration store); a configuration made in
memory has none and routes everything to the default connection, as before routes existed.

`plan_for` is what accepting a message uses and `explain` is what the route explainer shows;
both call `domain.routing.choose`, so an explanation cannot disagree with where messages go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from smsdesk.domain.connections import DEFAULT_ID, Connection, Health, implicit_id
from smsdesk.domain.routing import MessageFacts, RouteChoice, RouteProblem, RoutingTable, choose
from smsdesk.domain.settings import SmsConfiguration

SkipReason = Literal["disabled", "open_circuit", "unknown"]


def table_of(config: SmsConfiguration) -> RoutingTable:
    """The configuration's routing table; without one, only a default connection."""
    if config.routing is not None:
        return config.routing
    return _memory_table(config.module)


_MEMORY_TABLES: dict[str, RoutingTable] = {}


def _memory_table(module: str) -> RoutingTable:
    table = _MEMORY_TABLES.get(module)
    if table is None:
        default = Connection(DEFAULT_ID, DEFAULT_ID, module, is_default=True)
        table = _MEMORY_TABLES[module] = RoutingTable((), (default,))
    return table


def implicit_connection(module: str) -> Connection:
    """The stand-in for a module that has no connection: settings parked in the document."""
    return Connection(implicit_id(module), implicit_id(module), module, implicit=True)


def default_connection(table: RoutingTable, config: SmsConfiguration) -> Connection:
    """The default connection; the configured module's stand-in if none is stored."""
    return table.default() or _memory_table(config.module).connections[0]


def for_module(table: RoutingTable, config: SmsConfiguration, module: str) -> Connection:
    """A `module=` override: the default connection if it uses that module, else the first
    enabled connection of the module, else the module's implicit connection."""
    default = default_connection(table, config)
    if default.module == module:
        return default
    for connection in table.connections:
        if connection.module == module and connection.enabled:
            return connection
    return implicit_connection(module)


def named_connection(table: RoutingTable, id_or_name: str) -> Connection:
    """A connection asked for by id or name; DomainError when there is none or it is off."""
    connection = table.connection(id_or_name.strip())
    if connection is None:
        known = ", ".join(sorted(c.name for c in table.connections)) or "none"
        raise RouteProblem(
            "There is no connection '{name}'. Connections: {known}.",
            field="connection",
            name=id_or_name,
            known=known,
        )
    if not connection.enabled:
        raise RouteProblem(
            "The connection {name} is turned off; turn it on or choose another.",
            field="connection",
            name=connection.name,
        )
    return connection


@dataclass(frozen=True, slots=True)
class Plan:
    """The route chosen for a message and its connections, the first being tried first."""

    choice: RouteChoice
    connections: tuple[Connection, ...]

    @property
    def first(self) -> Connection:
        return self.connections[0]


def explicit_plan(connection: Connection, sender: str) -> Plan:
    """A message sent through one connection by name (or module): no route, no failover."""
    choice = RouteChoice(
        route_id=None,
        route_name="",
        connection_ids=(connection.id,),
        sender=sender,
        estimated_cost=None,
        currency=None,
        matched="connection",
    )
    return Plan(choice, (connection,))


def plan_for(table: RoutingTable, config: SmsConfiguration, facts: MessageFacts) -> Plan:
    """The route of a message by the table's rules, its connection ids resolved.

    A connection a route names that is no longer stored (only possible between a delete and
    the next reload of the table) is left out; a plan left empty falls back to the default.
    """
    default = default_connection(table, config)
    choice = choose(table.routes, facts, default.id)
    found = (_by_id(table, default, cid) for cid in choice.connection_ids)
    connections = tuple(c for c in found if c is not None)
    return Plan(choice, connections or (default,))


def _by_id(table: RoutingTable, default: Connection | None, cid: str) -> Connection | None:
    if default is not None and cid == default.id:
        return default
    return next((c for c in table.connections if c.id == cid), None)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A connection of the plan that would be passed over now, and why."""

    connection_id: str
    name: str
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class Explanation:
    """Which route a message would take, the connection it would go to first, and why."""

    choice: RouteChoice
    plan: tuple[str, ...]
    first: Connection | None
    skipped: tuple[Skipped, ...]


def explain(
    table: RoutingTable,
    facts: MessageFacts,
    health: Mapping[str, Health],
    config: SmsConfiguration | None = None,
) -> Explanation:
    """The route `facts` would take (the same `choose` as accepting), and which of its
    connections would be skipped now: turned off, or with an open circuit breaker."""
    default = table.default() if config is None else default_connection(table, config)
    choice = choose(table.routes, facts, default.id if default is not None else DEFAULT_ID)
    skipped: list[Skipped] = []
    first: Connection | None = None
    for cid in choice.connection_ids:
        connection = _by_id(table, default, cid)
        reason: SkipReason | None = None
        if connection is None:
            reason = "unknown"
        elif not connection.enabled:
            reason = "disabled"
        elif health.get(cid) is not None and health[cid].state == "open":
            reason = "open_circuit"
        if reason is not None:
            skipped.append(Skipped(cid, connection.name if connection else cid, reason))
        elif first is None:
            first = connection
    return Explanation(choice, choice.connection_ids, first, tuple(skipped))
