"""Choosing a route: ordered rules, first enabled match wins, the default connection last."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsdesk.domain.errors import DomainError
from smsdesk.domain.routing import MessageFacts, Route, check_route, choose, matches

NL = MessageFacts(
    recipient="+31612345678",
    country="NL",
    sender="Shop",
    priority=2,
    api_key_id="key1",
    tag="otp",
    segments=3,
)


def _route(position: int = 1, /, **fields: object) -> Route:
    values: dict[str, object] = {
        "id": f"r{position}",
        "name": f"route {position}",
        "position": position,
        "connection_ids": ("a",),
    }
    values.update(fields)
    return Route(**values)  # type: ignore[arg-type]


MATCHING = [
    ("no fields: any message", {}, True),
    ("country", {"countries": ("NL",)}, True),
    ("another country", {"countries": ("BE", "DE")}, False),
    ("one of the countries", {"countries": ("BE", "NL")}, True),
    ("prefix with +", {"prefixes": ("+316",)}, True),
    ("prefix without +", {"prefixes": ("3161",)}, True),
    ("prefix of another number", {"prefixes": ("+3162",)}, False),
    ("the number", {"numbers": ("+31612345678",)}, True),
    ("another number", {"numbers": ("+31612345679",)}, False),
    ("sender, any case", {"senders": ("SHOP",)}, True),
    ("another sender", {"senders": ("Bank",)}, False),
    ("priority", {"priorities": (1, 2)}, True),
    ("another priority", {"priorities": (1,)}, False),
    ("api key", {"api_key_ids": ("key1",)}, True),
    ("another api key", {"api_key_ids": ("key2",)}, False),
    ("tag", {"tags": ("otp", "news")}, True),
    ("another tag", {"tags": ("news",)}, False),
    ("all fields fit", {"countries": ("NL",), "priorities": (2,), "tags": ("otp",)}, True),
    ("one field of several does not fit", {"countries": ("NL",), "priorities": (3,)}, False),
    ("disabled route", {"enabled": False}, False),
]


@pytest.mark.parametrize(
    ("fields", "expected"), [c[1:] for c in MATCHING], ids=[c[0] for c in MATCHING]
)
def test_match_fields(fields: dict[str, object], expected: bool) -> None:
    """Empty fields match anything; values within a field are OR, fields are AND."""
    assert matches(_route(**fields), NL) is expected


@pytest.mark.parametrize("field", ["api_key_ids", "tags"])
def test_a_message_without_key_or_tag_does_not_match_a_route_asking_for_one(field: str) -> None:
    """A route for certain API keys or tags does not catch messages that have none."""
    facts = MessageFacts("+31612345678", "NL", "Shop", 2, api_key_id=None, tag=None)
    assert not matches(_route(**{field: ("x",)}), facts)


def test_first_enabled_match_by_position_wins() -> None:
    """Routes are tried in position order; disabled and non-matching ones are passed over."""
    routes = [
        _route(3, countries=("NL",), connection_ids=("c3",)),
        _route(1, countries=("NL",), enabled=False, connection_ids=("c1",)),
        _route(2, countries=("BE",), connection_ids=("c2",)),
        _route(4, connection_ids=("c4",)),
    ]
    choice = choose(routes, NL, "default")
    assert (choice.route_id, choice.connection_ids, choice.matched) == ("r3", ("c3",), "countries")


def test_default_connection_is_the_implicit_last_rule() -> None:
    """A message no route matches goes to the default connection, with no cost estimate."""
    choice = choose([_route(countries=("BE",))], NL, "default")
    assert choice.route_id is None
    assert choice.route_name == "default"
    assert choice.connection_ids == ("default",)
    assert choice.sender == "Shop"
    assert choice.estimated_cost is None and choice.currency is None


def test_route_overrides_sender_and_estimates_cost() -> None:
    """The sender override applies, and the cost is segments times price in the route's currency."""
    route = _route(
        connection_ids=("a", "b"),
        sender_override="Alerts",
        price_per_segment=Decimal("0.07500"),
        currency="EUR",
    )
    choice = choose([route], NL, "default")
    assert choice.connection_ids == ("a", "b")
    assert choice.sender == "Alerts"
    assert choice.estimated_cost == Decimal("0.22500")
    assert choice.currency == "EUR"
    assert choice.matched == "any"


_facts = st.builds(
    MessageFacts,
    recipient=st.sampled_from(["+31612345678", "+32470123456", "+447700900123"]),
    country=st.sampled_from(["NL", "BE", "GB", None]),
    sender=st.sampled_from(["Shop", "Bank"]),
    priority=st.sampled_from([1, 2, 3]),
    api_key_id=st.sampled_from(["k1", "k2", None]),
    tag=st.sampled_from(["otp", None]),
    segments=st.integers(1, 10),
)
_routes = st.lists(
    st.builds(
        _route,
        position=st.integers(1, 1000),
        enabled=st.booleans(),
        countries=st.lists(st.sampled_from(["NL", "BE", "GB"]), max_size=2).map(tuple),
        priorities=st.lists(st.sampled_from([1, 2, 3]), max_size=2).map(tuple),
        tags=st.lists(st.just("otp"), max_size=1).map(tuple),
        connection_ids=st.lists(st.sampled_from("abc"), min_size=1, max_size=3, unique=True).map(
            tuple
        ),
    ),
    max_size=6,
    unique_by=lambda r: r.position,
)


@given(routes=_routes, facts=_facts)
def test_choice_is_the_first_matching_route(routes: list[Route], facts: MessageFacts) -> None:
    """The chosen route matches, and no route before it (by position) does."""
    choice = choose(routes, facts, "default")
    ordered = sorted(routes, key=lambda r: r.position)
    matching = [r for r in ordered if matches(r, facts)]
    if not matching:
        assert choice.route_id is None and choice.connection_ids == ("default",)
    else:
        assert choice.route_id == matching[0].id
        assert choice.connection_ids == matching[0].connection_ids


def test_check_route_normalises_fields() -> None:
    """Entered values are normalised: country case, prefixes with +, numbers, a price."""
    route = check_route(
        _route(
            name=" NL mobile ",
            countries=("nl", "NL"),
            prefixes=("0031 6",),
            numbers=("+31 6 12345678",),
            priorities=(2, 1),
            connection_ids=("a", "a", "b"),
            price_per_segment="0.075",
            currency="eur",
        )
    )
    assert route.name == "NL mobile"
    assert route.countries == ("NL",)
    assert route.prefixes == ("+316",)
    assert route.numbers == ("+31612345678",)
    assert route.priorities == (1, 2)
    assert route.connection_ids == ("a", "b")
    assert (route.price_per_segment, route.currency) == (Decimal("0.07500"), "EUR")


BAD_ROUTES = [
    ({"name": " "}, "name"),
    ({"connection_ids": ()}, "connection_ids"),
    ({"countries": ("XX",)}, "countries"),
    ({"prefixes": ("+0",)}, "prefixes"),
    ({"numbers": ("+316",)}, "numbers"),
    ({"priorities": (4,)}, "priorities"),
    ({"tags": ("two words",)}, "tags"),
    ({"senders": ("a name that is too long",)}, "senders"),
    ({"sender_override": "€uro"}, "sender_override"),
    ({"price_per_segment": "cheap", "currency": "EUR"}, "price_per_segment"),
    ({"price_per_segment": "-1", "currency": "EUR"}, "price_per_segment"),
    ({"price_per_segment": "0.1"}, "currency"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_ROUTES, ids=[b[1] for b in BAD_ROUTES])
def test_check_route_names_the_wrong_field(fields: dict[str, object], field: str) -> None:
    """A route that cannot be saved is refused with the field it concerns."""
    with pytest.raises(DomainError) as refused:
        check_route(_route(**fields))
    assert refused.value.field == field
