"""Accepting a message fixes its route: connection plan, sender override, country, tag, cost."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsdesk.domain.connections import Connection, Health
from smsdesk.domain.errors import DomainError
from smsdesk.domain.routing import Route, RoutingTable
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.domain.spend_settings import SpendRefused, SpendSettings
from smsdesk.outbox.accept import NewMessage, message_facts, prepare_message
from smsdesk.outbox.routing import explain, table_of
from smsdesk.web.api.schemas import accepted_out

NOW = 1_800_000_000.0
DEFAULT = Connection("default", "default", "simulator", is_default=True)
CHEAP = Connection("cheap", "Cheap NL", "simulator")
BACKUP = Connection("backup", "Backup", "simulator")
OFF = Connection("off", "Off", "simulator", enabled=False)
ROUTES = (
    Route(
        id="r-otp",
        name="OTP",
        position=1,
        tags=("otp",),
        connection_ids=("backup", "cheap"),
    ),
    Route(
        id="r-nl",
        name="NL mobile",
        position=2,
        countries=("NL",),
        connection_ids=("off", "cheap", "backup"),
        sender_override="Shop",
        price_per_segment=Decimal("0.07500"),
        currency="EUR",
    ),
)


def _config(**fields: object) -> SmsConfiguration:
    config = SmsConfiguration.model_validate({"spend": {"allowed_countries": ["*"]}, **fields})
    config._routing = RoutingTable(ROUTES, (DEFAULT, CHEAP, BACKUP, OFF))
    return config


def test_a_message_records_its_route_plan_and_estimated_cost() -> None:
    """The first matching route gives the plan, the sender, the country and the cost."""
    row = prepare_message(NewMessage(to="+31612345678", text="x" * 200), _config(), NOW)
    assert row["connection_id"] == "off"
    assert json.loads(row["route_plan"]) == ["off", "cheap", "backup"]
    assert (row["route_id"], row["route_name"], row["plan_index"]) == ("r-nl", "NL mobile", 0)
    assert (row["country"], row["sender"], row["module"]) == ("NL", "Shop", "simulator")
    assert (row["estimated_cost"], row["cost_currency"]) == ("0.15000", "EUR")
    answer = accepted_out(row)
    assert (answer["route"], answer["estimated_cost"]) == ("NL mobile", "0.15000")


def test_a_tag_chooses_its_route_and_others_fall_to_the_default() -> None:
    """A tagged message takes the tag's route; a Belgian one takes the default connection."""
    tagged = prepare_message(NewMessage(to="+31612345678", text="1234", tag="otp"), _config(), NOW)
    assert (tagged["route_name"], tagged["connection_id"], tagged["tag"]) == (
        "OTP",
        "backup",
        "otp",
    )
    other = prepare_message(NewMessage(to="+32470123456", text="hi"), _config(), NOW)
    assert other["route_id"] is None and other["route_name"] == "default"
    assert json.loads(other["route_plan"]) == ["default"]
    assert other["estimated_cost"] is None and other["country"] == "BE"


def test_an_explicit_connection_or_module_skips_the_routes() -> None:
    """connection= sends through that connection only; module= keeps today's behaviour."""
    named = prepare_message(
        NewMessage(to="+31612345678", text="hi", connection="Cheap NL"), _config(), NOW
    )
    assert json.loads(named["route_plan"]) == ["cheap"] and named["route_id"] is None
    by_module = prepare_message(
        NewMessage(to="+31612345678", text="hi", module="twilio"), _config(), NOW
    )
    assert (by_module["connection_id"], by_module["module"]) == ("module:twilio", "twilio")
    same_module = prepare_message(
        NewMessage(to="+31612345678", text="hi", module="simulator"), _config(), NOW
    )
    assert same_module["connection_id"] == "default"


@pytest.mark.parametrize(
    ("connection", "phrase"), [("nope", "no connection 'nope'"), ("off", "turned off")]
)
def test_an_unknown_or_disabled_connection_is_refused(connection: str, phrase: str) -> None:
    with pytest.raises(DomainError) as refused:
        prepare_message(
            NewMessage(to="+31612345678", text="hi", connection=connection), _config(), NOW
        )
    assert refused.value.field == "connection" and phrase in refused.value.message


def test_a_configuration_without_routing_goes_to_the_default_connection() -> None:
    """A configuration made in memory (no table attached) sends as before routes existed."""
    row = prepare_message(NewMessage(to="+31612345678", text="hi"), SmsConfiguration(), NOW)
    assert (row["connection_id"], row["module"], row["route_name"]) == (
        "default",
        "simulator",
        "default",
    )


def test_the_allow_list_refuses_other_countries_but_not_test_sends() -> None:
    """Empty allow-list: the default country code's country only; * allows all."""
    config = SmsConfiguration(default_country_code="+31")
    with pytest.raises(SpendRefused) as refused:
        prepare_message(NewMessage(to="+32470123456", text="hi"), config, NOW)
    assert refused.value.rule == "country_not_allowed" and refused.value.field == "to"
    assert "country_not_allowed" in refused.value.message
    prepare_message(NewMessage(to="+32470123456", text="hi"), config, NOW, is_test=True)
    prepare_message(NewMessage(to="+31612345678", text="hi"), config, NOW)
    assert SpendSettings(allowed_countries=["*"]).allowed_regions("+31") is None
    assert SpendSettings().allowed_regions("+1") >= {"US", "CA"}  # type: ignore[operator]


@pytest.mark.parametrize(
    "wanted",
    [
        NewMessage(to="+31612345678", text="hi"),
        NewMessage(to="+31612345678", text="1234", tag="otp"),
        NewMessage(to="+32470123456", text="hi"),
    ],
)
def test_explain_agrees_with_accepting(wanted: NewMessage) -> None:
    """explain, given the facts accepting sees, chooses the route and plan accepting chose."""
    config = _config()
    row = prepare_message(wanted, config, NOW)
    explained = explain(table_of(config), message_facts(wanted, config), {})
    assert explained.choice.route_id == row["route_id"]
    assert list(explained.plan) == json.loads(row["route_plan"])


def test_explain_names_the_connections_it_would_skip() -> None:
    """Turned-off connections and open circuits are skipped; the first usable one is named."""
    config = _config()
    facts = message_facts(NewMessage(to="+31612345678", text="hi"), config)
    explained = explain(table_of(config), facts, {"cheap": Health(state="open")})
    assert [(s.connection_id, s.reason) for s in explained.skipped] == [
        ("off", "disabled"),
        ("cheap", "open_circuit"),
    ]
    assert explained.first is BACKUP


_tables = st.lists(
    st.builds(
        Route,
        id=st.uuids().map(str),
        name=st.just("r"),
        position=st.integers(1, 50),
        enabled=st.booleans(),
        countries=st.lists(st.sampled_from(["NL", "BE"]), max_size=2).map(tuple),
        priorities=st.lists(st.sampled_from([1, 2, 3]), max_size=2).map(tuple),
        tags=st.lists(st.sampled_from(["otp", "news"]), max_size=1).map(tuple),
        connection_ids=st.lists(
            st.sampled_from(["default", "cheap", "backup", "off"]),
            min_size=1,
            max_size=3,
            unique=True,
        ).map(tuple),
    ),
    max_size=5,
    unique_by=lambda r: r.position,
)
_messages = st.builds(
    NewMessage,
    to=st.sampled_from(["+31612345678", "+32470123456"]),
    text=st.just("hi"),
    priority=st.sampled_from([1, 2, 3, None]),
    tag=st.sampled_from(["otp", "news", None]),
)


@given(routes=_tables, wanted=_messages)
def test_explain_never_disagrees_with_accepting(routes: list[Route], wanted: NewMessage) -> None:
    """For any routes and message, the explainer names the route and plan accepting records."""
    config = SmsConfiguration.model_validate({"spend": {"allowed_countries": ["*"]}})
    config._routing = RoutingTable(tuple(routes), (DEFAULT, CHEAP, BACKUP, OFF))
    row = prepare_message(wanted, config, NOW, api_key_id="k")
    explained = explain(table_of(config), message_facts(wanted, config, api_key_id="k"), {})
    assert explained.choice.route_id == row["route_id"]
    assert list(explained.plan) == json.loads(row["route_plan"])
