"""Customers through the API and the CLI: numbers normalised, one owner per number, CRUD."""

from __future__ import annotations

from typing import Any

import httpx
from typer.testing import CliRunner

from smsdesk.domain.ids import new_id
from smsdesk.store.tables import customer_numbers, customers, requests
from tests.support.cli import fails, ok
from tests.support.harness import Harness

ADA = "+31612345678"
BOB = "+31623456789"
UK = "+447400123456"


async def _create(h: Harness, name: str, *numbers: str, **extra: Any) -> httpx.Response:
    return await h.post("/api/v1/customers", {"name": name, "numbers": list(numbers), **extra})


async def _created(h: Harness, name: str, *numbers: str) -> dict[str, Any]:
    response = await _create(h, name, *numbers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _patch(h: Harness, customer_id: str, body: dict[str, Any]) -> httpx.Response:
    return await h.client.patch(f"/api/v1/customers/{customer_id}", json=body, headers=h.headers)


async def _delete(h: Harness, path: str) -> httpx.Response:
    return await h.client.delete(path, headers=h.headers)


async def test_local_numbers_get_the_default_country_code(any_db_harness: Harness) -> None:
    """Numbers without a country code are stored in E.164 with the configured default one."""
    h = any_db_harness
    await h.configure(default_country_code="+31", inbound={"language": "nl"})
    body = await _created(h, "  Ada   Lovelace ", "06 1234 5678", "+44 7400 123456", "0612345678")
    assert body["name"] == "Ada Lovelace"
    assert sorted(body["numbers"]) == sorted([ADA, UK])
    assert body["language"] == "nl" and body["created_from_sms"] is False
    shown = (await h.get(f"/api/v1/customers/{body['id']}")).json()
    assert shown == body


async def test_a_number_already_taken_is_refused_naming_its_owner(any_db_harness: Harness) -> None:
    """One number belongs to one customer; the answer says whose it is."""
    h = any_db_harness
    ada = await _created(h, "Ada", ADA)
    response = await _create(h, "Bob", BOB, "0031612345678")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "number_taken"
    assert "Ada" in error["message"] and ada["id"] in error["message"] and ADA in error["message"]
    assert error["fields"][0]["field"] == "numbers"
    listed = (await h.get("/api/v1/customers")).json()["customers"]
    assert [c["name"] for c in listed] == ["Ada"]


async def test_invalid_input_is_refused_naming_the_field(harness: Harness) -> None:
    """A bad number names its place in the list; a missing country code says how to fix it."""
    h = harness
    await h.configure(default_country_code="+31")
    response = await _create(h, "Ada", ADA, "12")
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "numbers.1"
    response = await _create(h, "   ", ADA)
    assert response.json()["error"]["fields"][0]["field"] == "name"
    response = await _create(h, "Ada", ADA, language="not a language")
    assert response.json()["error"]["fields"][0]["field"] == "language"
    response = await _create(h, "Ada")
    assert response.status_code == 422
    await h.configure(default_country_code="")
    response = await _create(h, "Ada", "0612345678")
    assert "no country code" in response.json()["error"]["message"]


async def test_search_by_name_or_number_and_paging(harness: Harness) -> None:
    """Part of a name (any case), part of a number, or a number as typed locally finds it."""
    h = harness
    await h.configure(default_country_code="+31")
    ada = await _created(h, "Ada Lovelace", ADA)
    bob = await _created(h, "Bob Dylan", BOB, UK)

    async def names(search: str) -> list[str]:
        body = (await h.get("/api/v1/customers", params={"search": search})).json()
        return [c["name"] for c in body["customers"]]

    assert await names("lovel") == ["Ada Lovelace"]
    assert await names("74001") == ["Bob Dylan"]
    assert await names("06 2345 6789") == ["Bob Dylan"]
    assert await names("%") == []
    assert await names("zzz") == []
    first = (await h.get("/api/v1/customers", params={"limit": 1})).json()
    assert [c["id"] for c in first["customers"]] == [bob["id"]]
    second = (
        await h.get("/api/v1/customers", params={"limit": 1, "cursor": first["next_cursor"]})
    ).json()
    assert [c["id"] for c in second["customers"]] == [ada["id"]]
    assert second["next_cursor"] is None


async def test_find_by_number_normalises_the_query(harness: Harness) -> None:
    h = harness
    await h.configure(default_country_code="+31")
    ada = await _created(h, "Ada", ADA)
    found = await h.get("/api/v1/customers/by-number/06-12345678")
    assert found.status_code == 200 and found.json()["id"] == ada["id"]
    assert (await h.get(f"/api/v1/customers/by-number/{BOB}")).status_code == 404
    invalid = await h.get("/api/v1/customers/by-number/12")
    assert invalid.status_code == 422 and invalid.json()["error"]["fields"][0]["field"] == "number"


async def test_update_renames_and_replaces_numbers(any_db_harness: Harness) -> None:
    """Replacing numbers frees the old ones; a number of another customer is refused."""
    h = any_db_harness
    ada = await _created(h, "Ada", ADA)
    bob = await _created(h, "Bob", BOB)
    response = await _patch(h, ada["id"], {"name": "Ada L.", "language": "NL", "numbers": [UK]})
    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["language"]) == ("Ada L.", "nl")
    assert response.json()["numbers"] == [UK]
    assert response.json()["updated_at"] >= ada["updated_at"]
    assert (await _patch(h, bob["id"], {"numbers": [BOB, ADA]})).status_code == 200
    taken = await _patch(h, bob["id"], {"numbers": [UK]})
    assert taken.status_code == 409 and "Ada L." in taken.json()["error"]["message"]
    assert (await h.get(f"/api/v1/customers/{bob['id']}")).json()["numbers"] == [ADA, BOB]
    assert (await _patch(h, "nope", {"name": "x"})).status_code == 404
    assert (await _patch(h, bob["id"], {"numbers": []})).status_code == 422


async def test_delete_removes_the_customer_and_frees_its_numbers(any_db_harness: Harness) -> None:
    h = any_db_harness
    ada = await _created(h, "Ada", ADA)
    assert (await _delete(h, f"/api/v1/customers/{ada['id']}")).status_code == 204
    assert (await h.get(f"/api/v1/customers/{ada['id']}")).status_code == 404
    assert (await _delete(h, f"/api/v1/customers/{ada['id']}")).status_code == 404
    await _created(h, "Someone else", ADA)


async def test_a_customer_with_requests_is_kept(harness: Harness) -> None:
    """Deleting a customer that has requests is refused so their history stays complete."""
    h = harness
    ada = await _created(h, "Ada", ADA)
    with h.service.engine.begin() as conn:
        conn.execute(
            requests.insert().values(
                id=new_id(),
                title="Help",
                status="open",
                category="SMS",
                priority="normal",
                language="en",
                customer_id=ada["id"],
                session_key="k1",
                created_at=1.0,
                updated_at=1.0,
                last_activity_at=1.0,
            )
        )
    response = await _delete(h, f"/api/v1/customers/{ada['id']}")
    assert response.status_code == 409 and response.json()["error"]["code"] == "customer_in_use"
    assert (await h.get(f"/api/v1/customers/{ada['id']}")).status_code == 200


async def test_customers_created_from_sms_are_listed_and_flagged(harness: Harness) -> None:
    """Customers the inbound pipeline inserts show up like any other, flagged as from SMS."""
    h = harness
    customer_id = new_id()
    with h.service.engine.begin() as conn:
        conn.execute(
            customers.insert().values(
                id=customer_id,
                name=ADA,
                language="en",
                created_from_sms=True,
                created_at=1.0,
                updated_at=1.0,
            )
        )
        conn.execute(customer_numbers.insert().values(number=ADA, customer_id=customer_id))
    listed = (await h.get("/api/v1/customers", params={"search": ADA})).json()["customers"]
    assert [(c["id"], c["created_from_sms"]) for c in listed] == [(customer_id, True)]
    renamed = await _patch(h, customer_id, {"name": "Ada"})
    assert renamed.json()["name"] == "Ada" and renamed.json()["created_from_sms"] is True


async def test_changes_need_an_admin_key(harness: Harness) -> None:
    """A sender key may read customers but not change them."""
    h = harness
    _, key = h.service.keys.create("sender", "sender")
    headers = {"Authorization": f"Bearer {key}"}
    refused = await h.client.post(
        "/api/v1/customers", json={"name": "Ada", "numbers": [ADA]}, headers=headers
    )
    assert refused.status_code == 403
    assert (await h.client.get("/api/v1/customers", headers=headers)).status_code == 200


def test_cli_add_list_show_update_remove(run: CliRunner) -> None:
    """The same rules hold on the command line, and errors say what to fix."""
    ok(run, "settings", "set", "default_country_code=+31")
    added = ok(run, "customers", "add", "Ada Lovelace", "-n", "0612345678", "--language", "nl")
    customer_id = added.split()[0]
    assert ADA in added and "language: nl" in added
    assert "Ada Lovelace" in fails(run, "customers", "add", "Bob", "-n", ADA)
    assert "numbers.0" in fails(run, "customers", "add", "Bob", "-n", "12")
    assert "at least one" in fails(run, "customers", "add", "Bob")
    assert "Ada Lovelace" in ok(run, "customers", "list", "--search", "lovelace")
    assert customer_id in ok(run, "customers", "show", "06 12345678")
    updated = ok(
        run, "customers", "update", customer_id, "--name", "Ada L.", "--add-number", "0623456789"
    )
    assert "Ada L." in updated and BOB in updated and ADA in updated
    updated = ok(run, "customers", "update", customer_id, "--remove-number", ADA)
    assert ADA not in updated
    assert "only number" in fails(run, "customers", "update", customer_id, "--remove-number", BOB)
    ok(run, "customers", "remove", customer_id)
    assert "no customer" in fails(run, "customers", "show", customer_id)
