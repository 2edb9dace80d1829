"""Customers' tags: given through the API, refused with a reason in the caller's language,
counted, used to choose a mailing's audience, and gone with the customer."""

from __future__ import annotations

from typing import Any

import httpx
from typer.testing import CliRunner

from smsdesk import mailings
from smsdesk.domain.mailings import MailingSpec
from smsdesk.mailings import CustomerFilter
from smsdesk.store.tables import customer_tags
from tests.support.cli import fails, ok
from tests.support.harness import Harness

ADA = "+31612345678"
BOB = "+31623456789"
CAROL = "+31634567890"


async def _create(h: Harness, name: str, number: str, tags: list[str]) -> dict[str, Any]:
    response = await h.post("/api/v1/customers", {"name": name, "numbers": [number], "tags": tags})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _patch(
    h: Harness, customer_id: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await h.client.patch(
        f"/api/v1/customers/{customer_id}", json=body, headers={**h.headers, **headers}
    )


async def test_tags_are_kept_in_lower_case_once_and_replaced_by_a_change(
    any_db_harness: Harness,
) -> None:
    """Tags come back sorted, lower case and without duplicates; a change replaces them all."""
    h = any_db_harness
    ada = await _create(h, "Ada", ADA, ["VIP", "outage-2026-12", "vip"])
    assert ada["tags"] == ["outage-2026-12", "vip"]
    assert (await h.get(f"/api/v1/customers/{ada['id']}")).json()["tags"] == ada["tags"]
    changed = await _patch(h, ada["id"], {"tags": ["newsletter"]})
    assert changed.json()["tags"] == ["newsletter"]
    cleared = await _patch(h, ada["id"], {"tags": []})
    assert cleared.json()["tags"] == []
    renamed = await _patch(h, ada["id"], {"name": "Ada L."})
    assert renamed.json()["tags"] == []  # leaving tags out keeps them as they are


async def test_a_bad_tag_is_refused_naming_it_in_english_and_dutch(harness: Harness) -> None:
    h = harness
    ada = await _create(h, "Ada", ADA, [])
    english = await _patch(h, ada["id"], {"tags": ["ok", "not a tag"]})
    assert english.status_code == 422
    error = english.json()["error"]
    assert error["fields"][0]["field"] == "tags.1" and "'not a tag'" in error["message"]
    dutch = await _patch(h, ada["id"], {"tags": ["x" * 60]}, **{"Accept-Language": "nl"})
    assert dutch.status_code == 422
    assert "langer dan 50 tekens" in dutch.json()["error"]["message"]
    many = await _patch(h, ada["id"], {"tags": [f"t{i}" for i in range(21)]})
    assert "at most 20 tags; 21 were given" in many.json()["error"]["message"]
    assert (await h.get(f"/api/v1/customers/{ada['id']}")).json()["tags"] == []


async def test_tags_are_counted_and_choose_a_mailings_audience(any_db_harness: Harness) -> None:
    """The tag list counts customers per tag; a mailing by tag gets exactly those customers."""
    h = any_db_harness
    ada = await _create(h, "Ada", ADA, ["vip", "nl"])
    await _create(h, "Bob", BOB, ["nl"])
    carol = await _create(h, "Carol", CAROL, ["vip"])
    counts = (await h.get("/api/v1/customers/tags")).json()["tags"]
    assert counts == [{"tag": "nl", "customers": 2}, {"tag": "vip", "customers": 2}]
    mailing = mailings.create_mailing(h.service, MailingSpec(name="VIP", text="Hello"))
    report = mailings.add_customers(h.service, mailing.id, CustomerFilter(tag="vip"))
    assert report.counts.total == 2
    page = (await h.get(f"/api/v1/mailings/{mailing.id}/recipients")).json()["recipients"]
    assert sorted(r["number"] for r in page) == [ADA, CAROL]
    assert {ada["id"], carol["id"]} == {r["customer_id"] for r in page}


async def test_deleting_or_erasing_a_customer_removes_its_tags(any_db_harness: Harness) -> None:
    h = any_db_harness
    ada = await _create(h, "Ada", ADA, ["vip"])
    bob = await _create(h, "Bob", BOB, ["vip", "nl"])
    deleted = await h.client.delete(f"/api/v1/customers/{ada['id']}", headers=h.headers)
    assert deleted.status_code == 204
    erased = await h.client.delete(
        f"/api/v1/customers/{bob['id']}", params={"erase": "true"}, headers=h.headers
    )
    assert erased.status_code == 200, erased.text
    with h.service.engine.connect() as conn:
        assert conn.execute(customer_tags.select()).all() == []
    assert (await h.get("/api/v1/customers/tags")).json()["tags"] == []


def test_the_cli_gives_replaces_and_removes_tags(run: CliRunner) -> None:
    added = ok(run, "customers", "add", "Ada", "-n", ADA, "--tag", "VIP", "-t", "nl")
    customer_id = added.split()[0]
    assert "tags:     nl vip" in added
    assert "tags:     beta" in ok(run, "customers", "update", customer_id, "--tag", "beta")
    assert "'no such'" in fails(run, "customers", "update", customer_id, "--tag", "no such")
    assert "tags:" not in ok(run, "customers", "update", customer_id, "--no-tags")


async def test_a_csv_import_adds_the_tags_of_its_tags_column(any_db_harness: Harness) -> None:
    """A `tags` column adds its tags (separated by ;) to new and existing customers alike,
    taking none away; a bad tag skips only its row, naming the tag."""
    h = any_db_harness
    ada = await _create(h, "Ada", ADA, ["vip"])
    data = (
        f"name,mobile,tags\nAda,{ADA},outage; VIP\nBob,{BOB},outage\nCarol,{CAROL},bad tag\n"
    ).encode()
    response = await h.client.post(
        "/api/v1/customers/import",
        content=data,
        headers={**h.headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["created"], report["updated"], report["skipped"]) == (1, 1, 1)
    assert report["rows"][0]["changed"] == ["tags"]
    assert "'bad tag'" in report["rows"][2]["reason"]
    assert (await h.get(f"/api/v1/customers/{ada['id']}")).json()["tags"] == ["outage", "vip"]
    counts = (await h.get("/api/v1/customers/tags")).json()["tags"]
    assert counts == [{"tag": "outage", "customers": 2}, {"tag": "vip", "customers": 1}]
