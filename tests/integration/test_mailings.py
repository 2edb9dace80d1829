"""Mailings through the API on SQLite and PostgreSQL: recipients checked and counted before
anything is sent, and a STOP reply withdrawing consent."""

from __future__ import annotations

from typing import Any

from smsdesk.store.customers import insert_customers
from smsdesk.store.mailing_consents import consent_of, set_consents
from smsdesk.store.optouts import add_opt_out
from tests.support.harness import Harness

NOW = 1_780_000_000.0


def number(i: int) -> str:
    return f"+3162{i:07d}"


def add_customers(h: Harness, numbers: list[str], *, consent: bool | None) -> list[str]:
    """Customers with these numbers, with consent given, withdrawn (False) or never (None)."""
    ids = [f"01MAILCUST{n[-10:]:0>16}"[:26] for n in numbers]
    rows = [
        {
            "id": cid,
            "name": f"Customer {n[-4:]}",
            "language": "nl",
            "created_from_sms": False,
            "created_at": NOW,
            "updated_at": NOW,
        }
        for cid, n in zip(ids, numbers, strict=True)
    ]
    links = [{"number": n, "customer_id": cid} for cid, n in zip(ids, numbers, strict=True)]
    with h.service.engine.begin() as conn:
        insert_customers(conn, rows, links)
        if consent is not None:
            set_consents(conn, ids, given=consent, source="test", now=NOW)
    return ids


async def create(h: Harness, **fields: Any) -> dict[str, Any]:
    body = {"name": "Outage notice", "text": "Hi {first_name}, the outage is over.", **fields}
    response = await h.post("/api/v1/mailings", body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def upload(h: Harness, mailing_id: str, csv: bytes) -> dict[str, Any]:
    response = await h.client.post(
        f"/api/v1/mailings/{mailing_id}/recipients",
        content=csv,
        headers={**h.headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def thousand_rows() -> tuple[bytes, dict[str, list[str]]]:
    """1,000 data rows: 986 valid, 2 repeated, 3 invalid, 4 opted out, 5 without consent."""
    valid = [number(i) for i in range(986)]
    groups = {
        "valid": valid,
        "opted_out": [number(i) for i in range(1000, 1004)],
        "no_customer": [number(i) for i in range(1004, 1006)],
        "never": [number(i) for i in range(1006, 1008)],
        "withdrawn": [number(1008)],
    }
    lines = [f"{n};Name {i}" for i, n in enumerate(valid)]
    lines[500:500] = [f"{valid[3]};again", f"{valid[700]};again"]
    lines[10:10] = ["+3161234;short", "not a number;x", "+31201234567;landline"]
    lines += [
        f"{n};x" for key in ("opted_out", "no_customer", "never", "withdrawn") for n in groups[key]
    ]
    assert len(lines) == 1000
    return ("Mobiel;First name\n" + "\n".join(lines) + "\n").encode("cp1252"), groups


async def test_a_thousand_recipients_are_counted_by_check_result(any_db_harness: Harness) -> None:
    """3 invalid, 2 duplicate, 4 opted out and 5 without consent leave exactly 986 valid, each
    blocked row listed with its line and reason, and the summary counts 986 SMS."""
    h = any_db_harness
    csv, groups = thousand_rows()
    add_customers(h, groups["valid"] + groups["opted_out"], consent=True)
    add_customers(h, groups["never"], consent=None)
    add_customers(h, groups["withdrawn"], consent=False)
    with h.service.engine.begin() as conn:
        for n in groups["opted_out"]:
            add_opt_out(conn, n, keyword="STOP", source="sms", inbound_id=None, now=NOW)
    mailing = await create(h)
    assert mailing["priority"] == 3 and mailing["status"] == "draft"

    report = await upload(h, mailing["id"], csv)

    expected = {"valid": 986, "invalid": 3, "duplicate": 2, "opted_out": 4, "no_consent": 5}
    assert report["counts"] == {**expected, "total": 1000}
    assert report["file"] == {
        "encoding": "utf-8",  # plain ASCII reads as UTF-8
        "delimiter": ";",
        "header": True,
        "variables": ["first_name"],
    }
    problems = {(p["line"], p["result"]) for p in report["problems"]}
    assert {(12, "invalid"), (13, "invalid"), (14, "invalid")} <= problems
    assert sum(1 for _, result in problems if result == "duplicate") == 2
    summary = (await h.get(f"/api/v1/mailings/{mailing['id']}/summary")).json()
    assert summary["counts"] == {**expected, "total": 1000}
    assert summary["messages"] == 986 and summary["segments"] == 986
    assert summary["refused"] == []
    stats = (await h.get(f"/api/v1/mailings/{mailing['id']}/statistics")).json()
    assert stats["blocked"] == {
        **{k: v for k, v in expected.items() if k != "valid"},
        "refused": 0,
    }
    assert stats["status"]["waiting"] == 986 and stats["messages"] == {"waiting": 986}


async def test_adding_the_same_numbers_again_counts_them_as_duplicates(
    any_db_harness: Harness,
) -> None:
    """A second upload finds the numbers of the first in the mailing: nothing counted twice."""
    h = any_db_harness
    add_customers(h, [number(1), number(2)], consent=True)
    mailing = await create(h, text="Hello")
    url = f"/api/v1/mailings/{mailing['id']}/recipients"
    first = await h.post(url, {"numbers": [number(1), number(2)]})
    second = await h.post(url, {"text": f"{number(2)}\n{number(3)}"})
    assert first.json()["counts"]["valid"] == 2
    assert second.json()["counts"] == {
        "valid": 0,
        "invalid": 0,
        "duplicate": 1,
        "opted_out": 0,
        "no_consent": 1,
        "total": 2,
    }
    page = (await h.get(url, params={"limit": 2})).json()
    assert [r["number"] for r in page["recipients"]] == [number(1), number(2)]
    rest = (await h.get(url, params={"after": page["next_after"]})).json()
    assert [(r["number"], r["result"]) for r in rest["recipients"]] == [
        (number(2), "duplicate"),
        (number(3), "no_consent"),
    ]


async def test_customers_by_filter_become_recipients(any_db_harness: Harness) -> None:
    """Customers chosen by language each get one row; only those with consent are valid."""
    h = any_db_harness
    add_customers(h, [number(1), number(2)], consent=True)
    add_customers(h, [number(3)], consent=None)
    mailing = await create(h, text="Hi {customer.name}")
    url = f"/api/v1/mailings/{mailing['id']}/recipients"
    report = (await h.post(url, {"customers": {"language": "nl"}})).json()
    assert (report["counts"]["valid"], report["counts"]["no_consent"]) == (2, 1)
    none = (await h.post(url, {"customers": {"language": "en"}})).json()
    assert none["counts"]["total"] == 0
    preview = await h.get(f"/api/v1/mailings/{mailing['id']}/preview", params={"number": number(2)})
    assert preview.json()["text"] == "Hi Customer 0002"


async def test_a_stop_reply_withdraws_consent_and_opts_out(harness: Harness) -> None:
    """A customer who consented texts STOP: consent is withdrawn (source sms) and a new
    mailing counts the number as opted out."""
    h = harness
    (customer_id,) = add_customers(h, [number(7)], consent=True)
    await h.receive(number(7), "STOP")
    with h.service.engine.connect() as conn:
        row = consent_of(conn, customer_id)
    assert row is not None and (row.state, row.source) == ("withdrawn", "sms")
    consent = (await h.get(f"/api/v1/mailings/consents/{customer_id}")).json()
    assert consent["state"] == "withdrawn"
    mailing = await create(h, text="Hello")
    report = await h.post(f"/api/v1/mailings/{mailing['id']}/recipients", {"numbers": [number(7)]})
    assert report.json()["counts"]["opted_out"] == 1


async def test_consent_is_given_through_the_api_and_audited(harness: Harness) -> None:
    """PUT records consent with its source; an unknown customer is a 404."""
    h = harness
    (customer_id,) = add_customers(h, [number(8)], consent=None)
    url = f"/api/v1/mailings/consents/{customer_id}"
    assert (await h.get(url)).json()["state"] == "none"
    given = await h.put(url, {"given": True, "source": "web form"})
    assert given.status_code == 200, given.text
    assert (given.json()["state"], given.json()["source"]) == ("given", "web form")
    missing = await h.put("/api/v1/mailings/consents/NOPE", {"given": True})
    assert missing.status_code == 404
    audit = await h.get("/api/v1/audit", params={"action": "customer.mailing_consent"})
    assert audit.status_code == 200, audit.text
    assert customer_id in audit.text


async def test_turning_the_consent_override_on_and_off_checks_consent_again(
    any_db_harness: Harness,
) -> None:
    """An administrator's override makes recipients without consent valid; taking it back
    counts them as without consent again."""
    h = any_db_harness
    add_customers(h, [number(1)], consent=True)
    add_customers(h, [number(2)], consent=None)
    created = await create(h, text="Hello")
    url = f"/api/v1/mailings/{created['id']}"
    await h.post(f"{url}/recipients", {"numbers": [number(1), number(2), number(3)]})
    body = {"name": "Outage notice", "text": "Hello"}

    overridden = await h.put(url, {**body, "override_consent": True})
    assert overridden.status_code == 200, overridden.text
    counts = (await h.get(f"{url}/summary")).json()["counts"]
    assert (counts["valid"], counts["no_consent"]) == (3, 0)

    await h.put(url, {**body, "override_consent": False})
    counts = (await h.get(f"{url}/summary")).json()["counts"]
    assert (counts["valid"], counts["no_consent"]) == (1, 2)


async def test_a_mailing_recipient_can_be_erased(harness: Harness) -> None:
    """Erasing a customer who consented and was a mailing's recipient removes both."""
    h = harness
    (customer_id,) = add_customers(h, [number(9)], consent=True)
    created = await create(h, text="Hello")
    await h.post(f"/api/v1/mailings/{created['id']}/recipients", {"numbers": [number(9)]})
    erased = await h.client.delete(
        f"/api/v1/customers/{customer_id}", params={"erase": "true"}, headers=h.headers
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"]["mailing_consents"] == 1
    assert erased.json()["erased"]["mailing_recipients"] == 1
