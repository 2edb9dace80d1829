"""Routes: which connections an outbound SMS may go through, decided once when it is accepted.

Routes are ordered rules. The first enabled route whose match fields all fit the message wins;
the default connection is the implicit last rule, so every message has a route. A field left
empty matches anything; a field with values matches when one of them fits (AND across fields,
OR within one). A route names an ordered list of connections (the first is tried first, the
others are for failover), may replace the sender, and may carry a price per segment from which
the message's estimated cost is computed.

`choose` is the only place this decision is made: accepting a message and explaining a route
(`outbox.routing.explain`) both call it, so an explanation cannot disagree with where messages
go.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import phonenumbers

from smsdesk.domain.connections import DEFAULT_ID, Connection
from smsdesk.domain.errors import DomainError
from smsdesk.domain.sender import validate_sender

DEFAULT_ROUTE_NAME = "default"
COST_PLACES = Decimal("0.00001")  # the precision of messages.estimated_cost (Numeric(12, 5))
MAX_PRICE = Decimal("9999999")
_PREFIX = re.compile(r"^\+?[1-9]\d{0,14}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_TAG = re.compile(r"^[\w.\-:/]{1,64}$")
BAD_TAG = "'{value}' is not a tag; use up to 64 letters, digits and . - _ : /"


class RouteProblem(DomainError):
    """A refusal about routes or connections; `msgid` and `params` make it translatable."""

    def __init__(self, msgid: str, *, field: str, **params: Any) -> None:
        super().__init__(msgid.format(**params), field=field)
        self.msgid = msgid
        self.params = params


@dataclass(frozen=True, slots=True)
class Route:
    """One routing rule; its match fields are normalised (see `check_route`)."""

    id: str
    name: str
    position: int
    enabled: bool = True
    countries: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()
    api_key_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    connection_ids: tuple[str, ...] = ()
    sender_override: str | None = None
    price_per_segment: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What routing looks at in a message: the E.164 recipient and its ISO country, etc."""

    recipient: str
    country: str | None
    sender: str
    priority: int
    api_key_id: str | None = None
    tag: str | None = None
    segments: int = 1


class RouteChoice(NamedTuple):
    """Where a message goes: the route (None for the default rule) and its connection plan.

    `matched` names the fields that decided it, e.g. "country, priority", or "default".
    (A named tuple: one is made for every message accepted, and it is cheaper to make.)
    """

    route_id: str | None
    route_name: str
    connection_ids: tuple[str, ...]
    sender: str
    estimated_cost: Decimal | None
    currency: str | None
    matched: str


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """The routes (in position order) and the stored connections they may name."""

    routes: tuple[Route, ...] = ()
    connections: tuple[Connection, ...] = ()
    _default: Connection | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.routes, key=lambda r: r.position))
        object.__setattr__(self, "routes", ordered)
        default = next((c for c in self.connections if c.is_default), None)
        object.__setattr__(self, "_default", default)

    def default(self) -> Connection | None:
        """The default connection (None only when no connection is stored)."""
        return self._default

    def default_id(self) -> str:
        default = self.default()
        return default.id if default is not None else DEFAULT_ID

    def connection(self, id_or_name: str) -> Connection | None:
        """A stored connection by id, else by name (names compare case-insensitively)."""
        by_id = next((c for c in self.connections if c.id == id_or_name), None)
        if by_id is not None:
            return by_id
        wanted = id_or_name.casefold()
        return next((c for c in self.connections if c.name.casefold() == wanted), None)


def _digits(prefix: str) -> str:
    return prefix.removeprefix("+")


def _fits(route: Route, name: str, facts: MessageFacts) -> bool:
    """Whether `facts` fit one non-empty match field of `route`."""
    if name == "countries":
        return facts.country is not None and facts.country in route.countries
    if name == "prefixes":
        recipient = _digits(facts.recipient)
        return any(recipient.startswith(_digits(p)) for p in route.prefixes)
    if name == "numbers":
        return any(_digits(facts.recipient) == _digits(n) for n in route.numbers)
    if name == "senders":
        return any(facts.sender.casefold() == s.casefold() for s in route.senders)
    if name == "priorities":
        return facts.priority in route.priorities
    if name == "api_key_ids":
        return facts.api_key_id is not None and facts.api_key_id in route.api_key_ids
    return facts.tag is not None and facts.tag in route.tags


MATCH_FIELDS = ("countries", "prefixes", "numbers", "senders", "priorities", "api_key_ids", "tags")


def field_matches(route: Route, facts: MessageFacts) -> dict[str, bool]:
    """For each non-empty match field of `route`, whether `facts` fit it."""
    return {name: _fits(route, name, facts) for name in MATCH_FIELDS if getattr(route, name)}


def matches(route: Route, facts: MessageFacts) -> bool:
    """Whether an enabled route applies to a message (every non-empty field fits)."""
    return route.enabled and all(field_matches(route, facts).values())


def estimated_cost(price: Decimal | None, segments: int) -> Decimal | None:
    """Segments times price per segment, to the stored precision; None without a price."""
    if price is None:
        return None
    return (price * segments).quantize(COST_PLACES)


def choose(routes: Iterable[Route], facts: MessageFacts, default_connection_id: str) -> RouteChoice:
    """The first enabled route (by position) that matches, else the default connection."""
    for route in sorted(routes, key=lambda r: r.position):
        if not route.connection_ids or not matches(route, facts):
            continue
        fields = list(field_matches(route, facts))
        return RouteChoice(
            route_id=route.id,
            route_name=route.name,
            connection_ids=route.connection_ids,
            sender=route.sender_override or facts.sender,
            estimated_cost=estimated_cost(route.price_per_segment, facts.segments),
            currency=route.currency if route.price_per_segment is not None else None,
            matched=", ".join(fields) if fields else "any",
        )
    return RouteChoice(
        route_id=None,
        route_name=DEFAULT_ROUTE_NAME,
        connection_ids=(default_connection_id,),
        sender=facts.sender,
        estimated_cost=None,
        currency=None,
        matched="default",
    )


# -- checking what an administrator enters --------------------------------------------------


def _country(value: str) -> str:
    code = value.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise RouteProblem(
            "'{value}' is not a country code; use two letters such as NL or GB.",
            field="countries",
            value=value,
        )
    return code


def _prefix(value: str) -> str:
    cleaned = value.strip().replace(" ", "")
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if not _PREFIX.match(cleaned):
        raise RouteProblem(
            "'{value}' is not a number prefix; write it with its country code, e.g. +316.",
            field="prefixes",
            value=value,
        )
    return "+" + _digits(cleaned)


def _number(value: str) -> str:
    prefix = _prefix(value)
    try:
        parsed = phonenumbers.parse(prefix, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_possible_number(parsed):
        raise RouteProblem(
            "'{value}' is not a full phone number; write it with its country code, "
            "e.g. +31612345678.",
            field="numbers",
            value=value,
        )
    return prefix


def _priority(value: int) -> int:
    if isinstance(value, bool) or value not in (1, 2, 3):
        raise RouteProblem(
            "Priority {value} does not exist; use 1, 2 or 3.", field="priorities", value=value
        )
    return value


def check_tag(value: str, field: str = "tags") -> str:
    """A tag (of a message, or one a route matches): up to 64 letters, digits and . - _ : /"""
    tag = value.strip()
    if not _TAG.match(tag):
        raise RouteProblem(BAD_TAG, field=field, value=value)
    return tag


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def check_price(
    price: Decimal | str | float | None, currency: str | None
) -> tuple[Decimal | None, str | None]:
    """A price per segment (0 or more) with its ISO currency code, or neither."""
    if price is None or price == "":
        return None, None
    try:
        value = Decimal(str(price))
    except InvalidOperation:
        raise RouteProblem(
            "'{value}' is not a price; write it like 0.075.",
            field="price_per_segment",
            value=price,
        ) from None
    if not value.is_finite() or not 0 <= value <= MAX_PRICE:
        raise RouteProblem(
            "The price {value} is out of range; give 0 or more.",
            field="price_per_segment",
            value=price,
        )
    code = (currency or "").strip().upper()
    if not _CURRENCY.match(code):
        raise RouteProblem(
            "Give the currency of the price as three letters, e.g. EUR.", field="currency"
        )
    return value.quantize(COST_PLACES), code


def check_route(route: Route) -> Route:
    """The route with its fields normalised; DomainError names the first field that is wrong."""
    name = route.name.strip()
    if not 1 <= len(name) <= 100:
        raise RouteProblem("Give the route a name of 1 to 100 characters.", field="name")
    connection_ids = _unique(c.strip() for c in route.connection_ids if c.strip())
    if not connection_ids:
        raise RouteProblem(
            "Choose at least one connection for the route; the first is tried first.",
            field="connection_ids",
        )
    sender = route.sender_override.strip() if route.sender_override else None
    if sender:
        try:
            sender = validate_sender(sender).value
        except DomainError as exc:
            raise DomainError(exc.message, field="sender_override") from None
    price, currency = check_price(route.price_per_segment, route.currency)
    return Route(
        id=route.id,
        name=name,
        position=route.position,
        enabled=route.enabled,
        countries=_unique(_country(c) for c in route.countries),
        prefixes=_unique(_prefix(p) for p in route.prefixes),
        numbers=_unique(_number(n) for n in route.numbers),
        senders=_unique(_checked_sender(s) for s in route.senders),
        priorities=tuple(sorted({_priority(p) for p in route.priorities})),
        api_key_ids=_unique(k.strip() for k in route.api_key_ids if k.strip()),
        tags=_unique(check_tag(t) for t in route.tags),
        connection_ids=connection_ids,
        sender_override=sender or None,
        price_per_segment=price,
        currency=currency,
    )


def _checked_sender(value: str) -> str:
    try:
        return validate_sender(value).value
    except DomainError as exc:
        raise DomainError(exc.message, field="senders") from None
