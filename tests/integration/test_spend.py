"""Spend controls where messages are stored: allowed countries and daily caps, on SQLite and
PostgreSQL. A refused request stores nothing and the refusal names the rule."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from smsdesk.crypto import SecretBox
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.outbox.accept import NewMessage, prepare_message
from smsdesk.providers.registry import get_module
from smsdesk.store.configuration import ConfigurationStore
from smsdesk.store.db import write_transaction
from smsdesk.store.messages import insert_messages
from smsdesk.store.spend import SpendRefused, charge, usage, utc_day
from smsdesk.store.tables import messages
from tests.support.harness import Harness

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
NL, BE, GB = "+31612345678", "+32470123456", "+447911123456"


class Recorded:
    """An event sink that keeps what it is given (the interface, not our hub)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, conn: Connection, event_type: str, payloads: Sequence[dict[str, Any]]) -> None:
        self.events.extend((event_type, payload) for payload in payloads)


def _configure(engine: Engine, **spend: Any) -> SmsConfiguration:
    store = ConfigurationStore(
        engine, SecretBox(Fernet.generate_key()), lambda name: get_module(name).settings_model
    )
    config = SmsConfiguration.model_validate({"default_country_code": "+31", "spend": spend})
    store.save(config)
    return config


def _rows(config: SmsConfiguration, *numbers: str, key: str | None = "k1", **kw: Any) -> list[Any]:
    return [
        prepare_message(NewMessage(to=n, text="hi"), config, NOW, api_key_id=key, **kw)
        for n in numbers
    ]


def _store(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        insert_messages(conn, rows, "api")


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one()


def test_a_cap_reached_refuses_the_whole_insert(engine: Engine) -> None:
    """The daily total counts messages; the insert that would pass it stores nothing."""
    config = _configure(engine, allowed_countries=["*"], daily_total=3)
    _store(engine, _rows(config, NL, NL))
    with pytest.raises(SpendRefused) as refused:
        _store(engine, _rows(config, NL, BE))
    assert (refused.value.rule, refused.value.cap, refused.value.used) == ("daily_total", 3, 2)
    assert "daily_total" in refused.value.message
    assert _count(engine) == 2
    _store(engine, _rows(config, BE))
    with pytest.raises(SpendRefused):
        _store(engine, _rows(config, NL))
    assert _count(engine) == 3


@pytest.mark.parametrize(
    ("caps", "rule"),
    [
        ({"daily_per_country": {"BE": 1}}, "daily_country"),
        ({"daily_per_api_key": {"k1": 1}}, "api_key_daily"),
    ],
)
def test_country_and_api_key_caps(engine: Engine, caps: dict[str, Any], rule: str) -> None:
    """A cap per country or per API key refuses only the messages it covers."""
    config = _configure(engine, allowed_countries=["*"], **caps)
    _store(engine, _rows(config, BE))
    _store(engine, _rows(config, NL, key="k2"))
    with pytest.raises(SpendRefused) as refused:
        _store(engine, _rows(config, BE))
    assert refused.value.rule == rule
    assert _count(engine) == 2


def test_without_caps_every_scope_is_counted(engine: Engine) -> None:
    """No cap set (the default): each insert still counts the day's total, every country
    and every API key, segments included, adding to what the day had."""
    config = _configure(engine, allowed_countries=["*"])
    long_text = "x" * 200  # two segments
    _store(engine, [*_rows(config, NL, BE, GB), *_rows(config, NL, key="k2")])
    _store(
        engine,
        [prepare_message(NewMessage(to=BE, text=long_text), config, NOW, api_key_id="k2")],
    )
    _store(engine, _rows(config, NL, key=None))
    with engine.connect() as conn:
        figures = {
            (u.scope, u.country, u.api_key_id): (u.messages, u.segments, u.cap, u.alerted)
            for u in usage(conn, utc_day(NOW))
        }
    assert figures == {
        ("total", "", ""): (6, 7, None, False),
        ("country", "NL", ""): (3, 3, None, False),
        ("country", "BE", ""): (2, 3, None, False),
        ("country", "GG", ""): (1, 1, None, False),  # +44 7911 is Guernsey's range
        ("api_key", "", "k1"): (3, 3, None, False),
        ("api_key", "", "k2"): (2, 3, None, False),
    }


def test_outside_the_allow_list_is_refused_where_it_is_stored(engine: Engine) -> None:
    """A row for a country that is not allowed (the list changed since it was accepted) is
    refused by the insert; test sends are not charged and not refused."""
    config = _configure(engine, allowed_countries=["*"])
    rows = _rows(config, NL, BE)
    _configure(engine)  # empty: the default country code's country only (NL)
    with pytest.raises(SpendRefused) as refused:
        _store(engine, rows)
    assert refused.value.rule == "country_not_allowed"
    assert _count(engine) == 0
    _store(engine, _rows(config, BE, key=None, is_test=True))
    with engine.connect() as conn:
        assert usage(conn, utc_day(NOW)) == []


def test_the_alert_fires_once_per_day_per_cap(engine: Engine) -> None:
    """At 80 % of a cap, spend.threshold fires once that day; each cap alerts on its own."""
    config = _configure(engine, allowed_countries=["*"], daily_total=5, daily_per_country={"BE": 2})
    sink = Recorded()
    for number in (NL, BE, NL, BE, NL):
        with engine.begin() as conn:
            charge(conn, _rows(config, number), NOW, sink)
    alerts = [(e["rule"], e["used"], e["cap"]) for t, e in sink.events if t == "spend.threshold"]
    assert alerts == [("daily_total", 4, 5), ("daily_country", 2, 2)]
    with engine.connect() as conn:
        figures = {
            (u.scope, u.country): (u.messages, u.cap, u.alerted) for u in usage(conn, utc_day(NOW))
        }
    assert figures[("total", "")] == (5, 5, True)
    assert figures[("country", "BE")] == (2, 2, True)
    assert figures[("country", "NL")] == (3, None, False)


async def test_the_api_refuses_with_the_rule_and_stores_nothing(any_db_harness: Harness) -> None:
    """422 names the rule for a country outside the allow-list and for a cap reached; the
    accepted answer and the message carry the route and the estimated cost."""
    h = any_db_harness
    await h.configure(webhooks={"allow_private": ["127.0.0.0/8"]})
    subscribed = await h.post(
        "/api/v1/webhooks", {"url": "http://127.0.0.1:9/events", "events": ["spend.threshold"]}
    )
    assert subscribed.status_code == 201, subscribed.text
    await h.configure(default_country_code="+31", spend={"daily_total": 2})
    refused = await h.post("/api/v1/messages", {"to": BE, "text": "hi"})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["fields"][0]["field"] == "to" and "country_not_allowed" in error["message"]
    accepted = await h.post("/api/v1/messages", {"to": NL, "text": "hi"})
    assert accepted.status_code == 201, accepted.text
    body = accepted.json()
    assert (body["route"], body["estimated_cost"]) == ("default", None)
    batch = await h.post("/api/v1/messages/batch", {"to": [NL, NL], "text": "hi"})
    assert batch.status_code == 422 and "daily_total" in batch.json()["error"]["message"]
    assert _count(h.service.engine) == 1
    stored = (await h.get(f"/api/v1/messages/{body['id']}")).json()
    assert stored["route"] == "default" and stored["estimated_cost"] is None
    dutch = await h.client.post(
        "/api/v1/messages",
        json={"to": BE, "text": "hi"},
        headers={**h.headers, "Accept-Language": "nl"},
    )
    assert "Berichten naar BE zijn niet toegestaan" in dutch.json()["error"]["message"]
    assert (await h.post("/api/v1/messages", {"to": NL, "text": "hi"})).status_code == 201
    rows = h.service.webhooks.store.deliveries(subscription_id=subscribed.json()["id"])
    events = [json.loads(row.payload) for row in rows]
    assert [(e["type"], e["data"]["rule"], e["data"]["used"]) for e in events] == [
        ("spend.threshold", "daily_total", 2)
    ]


def test_automatic_messages_over_a_cap_are_left_out_not_failed(engine: Engine) -> None:
    """An opt-out confirmation past a cap is not stored, and the transaction that makes it
    (processing the inbound SMS) goes on; the ones within the cap are stored."""
    config = _configure(engine, allowed_countries=["NL"], daily_total=1)
    rows = _rows(config, NL, NL, key=None)
    with engine.begin() as conn:
        insert_messages(conn, rows, "inbound")
        insert_messages(conn, _rows(config, NL, key=None), "out_of_hours")
    with engine.connect() as conn:
        stored = conn.execute(sa.select(messages.c.id)).scalars().all()
        assert stored == [rows[0]["id"]]
        assert [u.messages for u in usage(conn, utc_day(NOW))] == [1, 1]


def test_concurrent_inserts_never_pass_a_cap(engine: Engine) -> None:
    """Twelve transactions at once against a cap of 5: exactly five messages are stored."""
    config = _configure(engine, allowed_countries=["*"], daily_total=5)
    barrier = threading.Barrier(12)
    refused: list[SpendRefused] = []

    def one() -> None:
        rows = _rows(config, NL)
        barrier.wait()
        try:
            with write_transaction(engine) as conn, conn.begin():
                insert_messages(conn, rows, "api")
        except SpendRefused as exc:
            refused.append(exc)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _count(engine) == 5 and len(refused) == 7
