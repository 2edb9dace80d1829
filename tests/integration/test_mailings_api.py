"""The mailings API: drafts are created, read, previewed and deleted, and refusals are 422
answers in the caller's language, Dutch for Dutch callers."""

from __future__ import annotations

from typing import Any

import httpx

from smsdesk.domain.mailings import Action
from smsdesk.mailings import sender
from tests.support.harness import Harness

DUTCH = {"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"}


async def post(h: Harness, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    return await h.client.post(path, json=body, headers={**h.headers, **(headers or {})})


def refusal(response: httpx.Response) -> dict[str, str]:
    """field -> message of a 422 answer."""
    assert response.status_code == 422, response.text
    return {f["field"]: f["message"] for f in response.json()["error"]["fields"]}


async def test_a_draft_is_created_read_listed_and_deleted(harness: Harness) -> None:
    """The draft keeps what was set (window, throttle, tags); deleting it leaves a 404."""
    h = harness
    body = {
        "name": "Spring sale",
        "text": "Hi {customer.name}",
        "window": {"days": ["mon", "fri"], "from": "09:00", "to": "20:00"},
        "throttle_per_minute": 600,
        "tags": ["marketing"],
        "replies": "unrecognised",
    }
    created = await post(h, "/api/v1/mailings", body)
    assert created.status_code == 201, created.text
    mailing = created.json()
    assert {k: mailing[k] for k in ("status", "priority", "window", "throttle_per_minute")} == {
        "status": "draft",
        "priority": 3,
        "window": {"days": ["mon", "fri"], "from": "09:00", "to": "20:00"},
        "throttle_per_minute": 600,
    }
    url = f"/api/v1/mailings/{mailing['id']}"
    assert (await h.get(url)).json() == mailing
    listed = (await h.get("/api/v1/mailings", params={"status": "draft"})).json()
    assert [m["id"] for m in listed["mailings"]] == [mailing["id"]]
    assert (await h.client.delete(url, headers=h.headers)).status_code == 204
    gone = await h.get(url)
    assert gone.status_code == 404
    assert gone.json()["error"]["message"] == f"There is no mailing with id '{mailing['id']}'."


async def test_a_preview_fills_in_one_recipients_row(harness: Harness) -> None:
    """The preview of a CSV row uses its own columns, with the encoding and segments; a row
    without a value the text needs is refused naming the variable."""
    h = harness
    mailing = (await post(h, "/api/v1/mailings", {"name": "x", "text": "Dag {voornaam} €"})).json()
    url = f"/api/v1/mailings/{mailing['id']}"
    csv = "mobile,voornaam\n+31620000001,Zoë\n+31620000002,\n".encode("utf-16")
    added = await h.client.post(
        f"{url}/recipients", content=csv, headers={**h.headers, "Content-Type": "text/csv"}
    )
    assert added.status_code == 200, added.text
    rows = (await h.get(f"{url}/recipients")).json()["recipients"]
    first = await h.get(f"{url}/preview", params={"recipient": rows[0]["id"]})
    assert first.json() == {
        "values_from": None,
        "to": "+31620000001",
        "text": "Dag Zoë €",
        "encoding": "ucs2",  # ë is not in the GSM alphabet
        "segments": 1,
        "characters": 9,
    }
    second = await h.client.get(
        f"{url}/preview", params={"recipient": rows[1]["id"]}, headers={**h.headers, **DUTCH}
    )
    assert refusal(second) == {
        "variables.voornaam": "De tekst heeft {voornaam} nodig, maar deze ontvanger heeft "
        "daar geen waarde voor."
    }


async def test_refusals_speak_english_and_dutch(harness: Harness) -> None:
    """A window over midnight, a mailing with neither text nor template, and a CSV without a
    number column: the same fields, English by default and Dutch for Dutch callers."""
    h = harness
    night = {
        "name": "x",
        "text": "Hi",
        "window": {"days": ["mon"], "from": "22:00", "to": "06:00"},
    }
    assert refusal(await post(h, "/api/v1/mailings", night)) == {
        "window.to": "The send window closes at 06:00, before it opens at 22:00; a window "
        "cannot span midnight."
    }
    assert refusal(await post(h, "/api/v1/mailings", night, DUTCH)) == {
        "window.to": "Het verzendvenster sluit om 06:00, vóórdat het opent om 22:00; een "
        "venster kan niet over middernacht lopen."
    }
    empty = {"name": "x"}
    assert refusal(await post(h, "/api/v1/mailings", empty, DUTCH)) == {
        "text": "Geef de mailing een eigen tekst óf een antwoordsjabloon, niet allebei en niet "
        "geen van beide."
    }
    mailing = (await post(h, "/api/v1/mailings", {"name": "x", "text": "Hi"})).json()
    bad_file = await h.client.post(
        f"/api/v1/mailings/{mailing['id']}/recipients",
        content=b"name,city\nAda,Delft\n",
        headers={**h.headers, **DUTCH, "Content-Type": "text/csv"},
    )
    assert refusal(bad_file) == {
        "file": "Het bestand heeft geen kolom met nummers; noem één kolom in de eerste regel "
        "'mobile', 'number' of 'phone' (of 'mobiel', 'nummer', 'telefoon')."
    }
    missing = await post(h, "/api/v1/mailings", {"text": "Hi"}, DUTCH)
    assert refusal(missing) == {"name": "Dit veld is verplicht."}


async def test_a_draft_refuses_recipients_once_it_is_no_draft(harness: Harness) -> None:
    """Deleting is for drafts; the refusal says the status, in Dutch for a Dutch caller."""
    h = harness
    # scheduled a year ahead, so the service's own sender does not start it meanwhile
    body = {"name": "x", "text": "Hi", "scheduled_at": "2099-01-01T09:00:00Z"}
    mailing = (await post(h, "/api/v1/mailings", body)).json()
    sender.change_status(h.service, mailing["id"], Action.SCHEDULE)
    deleted = await h.client.delete(
        f"/api/v1/mailings/{mailing['id']}", headers={**h.headers, **DUTCH}
    )
    assert refusal(deleted) == {
        "status": "De mailing heeft status Ingepland; alleen een concept kan worden verwijderd."
    }
    added = await post(h, f"/api/v1/mailings/{mailing['id']}/recipients", {"numbers": ["+1"]})
    assert refusal(added) == {
        "status": "The mailing is scheduled; only a draft can be given recipients."
    }


async def test_a_test_sms_reaches_ones_own_number_before_the_start(harness: Harness) -> None:
    """The draft's text, filled in for the number, is delivered at once at priority 1; a
    number that opted out is refused."""
    h = harness
    mailing = await post(h, "/api/v1/mailings", {"name": "x", "text": "Test {customer.number}"})
    url = f"/api/v1/mailings/{mailing.json()['id']}/test"
    sent = await post(h, url, {"number": "+31620000009"})
    assert sent.status_code == 201, sent.text
    assert sent.json()["text"] == "Test +31620000009"
    message = await h.wait_for(sent.json()["message_id"], "delivered")
    assert message["priority"] == 1
    await post(h, "/api/v1/opt-outs", {"number": "+31620000008"})
    refused = await post(h, url, {"number": "+31620000008"})
    assert "opted out" in refusal(refused)["to"]


async def test_a_test_to_ones_own_number_takes_the_first_recipients_values(
    harness: Harness,
) -> None:
    """A text with the CSV's own columns can be tried on a number that is no recipient: the
    first valid recipient's values fill it, and the answer says which line they came from."""
    h = harness
    body = {"name": "x", "text": "Hi {first}", "override_consent": True}
    mailing = (await post(h, "/api/v1/mailings", body)).json()
    csv_file = "mobile,first\n+31600\n+31620000001,Ada\n+31620000002,Bob\n"
    added = await h.client.post(
        f"/api/v1/mailings/{mailing['id']}/recipients",
        content=csv_file.encode(),
        headers={**h.headers, "Content-Type": "text/csv"},
    )
    assert added.status_code == 200, added.text
    url = f"/api/v1/mailings/{mailing['id']}/test"
    sent = await post(h, url, {"number": "+31620000009"})
    assert sent.status_code == 201, sent.text
    assert (sent.json()["text"], sent.json()["values_from"]) == ("Hi Ada", 3)
    own = await h.get(
        f"/api/v1/mailings/{mailing['id']}/preview", params={"number": "+31620000002"}
    )
    assert (own.json()["text"], own.json()["values_from"]) == ("Hi Bob", None)


async def test_a_file_over_the_size_limit_is_refused_saying_to_split_it(harness: Harness) -> None:
    """A recipients file over the body limit is a 413 before it is read, saying how to send
    it anyway; nothing is added."""
    h = harness
    mailing = (await post(h, "/api/v1/mailings", {"name": "x", "text": "Hi"})).json()
    url = f"/api/v1/mailings/{mailing['id']}/recipients"
    big = b"mobile\n" + b"+31620000001\n" * (h.service.config.max_body_bytes // 13 + 1)
    refused = await h.client.post(
        url, content=big, headers={**h.headers, "Content-Type": "text/csv"}
    )
    assert refused.status_code == 413
    assert "split the file" in refused.json()["error"]["message"]
    assert (await h.get(url)).json()["recipients"] == []
