"""A mailing through a running `smsdesk serve` and the Kannel stand-in, as an administrator
runs one: customers imported, consent recorded, a CSV of recipients uploaded and checked,
the mailing started and followed through its statistics. Used by
`tests/e2e/test_mailing_e2e.py` and `bench/mailing.py`.

The recipients' file mixes in every kind of row the check blocks, so that a run shows each
one counted under its reason and none sent to: numbers that are not mobile numbers, numbers
given twice, numbers on the opt-out list and customers who never consented or withdrew.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.support.kannel_standin import KannelStandIn

INVALID = ["+3161234", "not a number", "+31201234567"]  # too short, text, a landline


def mobile(i: int) -> str:
    """The i-th Dutch mobile number of a run."""
    return f"+3162{i:07d}"


@dataclass
class RecipientsFile:
    """A recipients' CSV and what each of its rows is."""

    csv: bytes
    valid: list[str]  # customers who consented, on no list: each gets the SMS
    invalid: list[str]
    duplicates: list[str]  # the second time a valid number is given
    opted_out: list[str]  # consented customers whose numbers opted out
    no_consent: list[str]  # no customer, a customer who never said, one who withdrew
    never: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(
            map(len, (self.valid, self.invalid, self.duplicates, self.opted_out, self.no_consent))
        )

    def counts(self) -> dict[str, int]:
        """What the check should count, as the API names it."""
        return {
            "valid": len(self.valid),
            "invalid": len(self.invalid),
            "duplicate": len(self.duplicates),
            "opted_out": len(self.opted_out),
            "no_consent": len(self.no_consent),
            "total": self.rows,
        }


def recipients_file(valid: int) -> RecipientsFile:
    """`valid` good rows plus 3 invalid, 2 repeated, 4 opted out and 5 without consent (2
    without a customer, 2 customers who never consented, 1 who withdrew), semicolons and a
    per-row first name, as a Dutch spreadsheet exports it."""
    good = [mobile(i) for i in range(valid)]
    opted_out = [mobile(valid + i) for i in range(4)]
    no_customer = [mobile(valid + 4 + i) for i in range(2)]
    never = [mobile(valid + 6 + i) for i in range(2)]
    withdrawn = [mobile(valid + 8)]
    duplicates = [good[3], good[(valid * 7) // 10]]
    lines = [f"{n};Name {i}" for i, n in enumerate(good)]
    middle = len(lines) // 2
    lines[middle:middle] = [f"{n};again" for n in duplicates]
    lines[10:10] = [f"{n};x" for n in INVALID]
    lines += [f"{n};x" for n in (*opted_out, *no_customer, *never, *withdrawn)]
    csv = ("Mobiel;First name\n" + "\n".join(lines) + "\n").encode("cp1252")
    return RecipientsFile(
        csv,
        good,
        list(INVALID),
        duplicates,
        opted_out,
        [*no_customer, *never, *withdrawn],
        never,
        withdrawn,
    )


def api_client(base_url: str, key: str, timeout: float = 60) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout
    )


def ok(response: httpx.Response, *statuses: int) -> Any:
    """The JSON body of an answer with one of `statuses` (200 or 201 by default)."""
    assert response.status_code in (statuses or (200, 201)), response.text
    return response.json()


def configure_kannel(client: httpx.Client, standin: KannelStandIn, concurrency: int = 8) -> None:
    """The kannel module as the one module, pointed at the stand-in, Dutch numbers allowed."""
    settings = {
        "module": "kannel",
        "sender": "Smsdesk",
        "default_country_code": "+31",
        "module_settings": {"kannel": standin.module_settings()},
        "limits": {"kannel": {"rate_limit": 0, "concurrency": concurrency}},
    }
    ok(client.put("/api/v1/settings", json=settings))


def import_customers(client: httpx.Client, numbers: Iterable[str]) -> dict[str, str]:
    """Customers for these numbers through the CSV import; number -> customer id."""
    numbers = list(numbers)
    lines = [f"Customer {n[-5:]},{n}" for n in numbers]
    report = ok(
        client.post(
            "/api/v1/customers/import",
            content=("name,mobile\n" + "\n".join(lines) + "\n").encode(),
            headers={"Content-Type": "text/csv"},
        )
    )
    ids = [row["customer_id"] for row in report["rows"]]
    assert len(ids) == len(numbers) and all(ids), report
    return dict(zip(numbers, ids, strict=True))


def record_consent(client: httpx.Client, customer_ids: Iterable[str], *, given: bool) -> None:
    """PUT each customer's consent, as a web form behind the API would, four at a time."""

    def put(customer_id: str) -> None:
        ok(
            client.put(
                f"/api/v1/mailings/consents/{customer_id}",
                json={"given": given, "source": "web form"},
            )
        )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put, customer_ids))


def opt_out(client: httpx.Client, numbers: Iterable[str]) -> None:
    for number in numbers:
        ok(client.post("/api/v1/opt-outs", json={"number": number}))


def prepare_audience(client: httpx.Client, recipients: RecipientsFile) -> dict[str, str]:
    """Customers, consents and opt-outs for the rows of `recipients`; number -> customer id."""
    consenting = [*recipients.valid, *recipients.opted_out, *recipients.withdrawn]
    customers = import_customers(client, [*consenting, *recipients.never])
    record_consent(client, [customers[n] for n in consenting], given=True)
    record_consent(client, [customers[n] for n in recipients.withdrawn], given=False)
    opt_out(client, recipients.opted_out)
    return customers


def create_mailing(client: httpx.Client, **fields: Any) -> str:
    body = {"name": "Outage notice", "text": "Hi {first_name}, the outage is over.", **fields}
    mailing_id: str = ok(client.post("/api/v1/mailings", json=body))["id"]
    return mailing_id


def upload(client: httpx.Client, mailing_id: str, csv: bytes) -> dict[str, Any]:
    report: dict[str, Any] = ok(
        client.post(
            f"/api/v1/mailings/{mailing_id}/recipients",
            content=csv,
            headers={"Content-Type": "text/csv"},
        )
    )
    return report


def act(client: httpx.Client, mailing_id: str, action: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(client.post(f"/api/v1/mailings/{mailing_id}/{action}"))
    return body


def statistics(client: httpx.Client, mailing_id: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(client.get(f"/api/v1/mailings/{mailing_id}/statistics"))
    return body


def mailing_status(client: httpx.Client, mailing_id: str) -> str:
    status: str = ok(client.get(f"/api/v1/mailings/{mailing_id}"))["status"]
    return status


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {key: count for key, count in counts.items() if count}


def accounted(stats: dict[str, Any]) -> int:
    """Every recipient counted once: valid ones by their SMS's status, the others blocked by
    reason (at the check, or by the outbox when sending)."""
    return int(sum(stats["status"].values()) + sum(stats["blocked"].values()))


def blocked_numbers(client: httpx.Client, mailing_id: str, check: str) -> list[str]:
    """The numbers (as given, for invalid rows) the check blocked for `check`, in file order."""
    found = ok(
        client.get(
            f"/api/v1/mailings/{mailing_id}/recipients", params={"check": check, "limit": 1000}
        )
    )
    return [row["number"] for row in found["recipients"]]


def kannel_inbound(client: httpx.Client, sender: str, to: str, text: str) -> httpx.Response:
    """An SMS from a phone as smsbox's sms-service passes it on: a GET of the module's inbound
    URL with the get-url escapes of `providers/kannel.py:INBOUND_QUERY` filled in."""
    urls = ok(client.get("/api/v1/modules/kannel/callbacks"))
    query = {
        "from": sender,
        "to": to,
        "text": text,
        "id": uuid.uuid4().hex,
        "ts": str(int(time.time())),
        "coding": "0",
        "charset": "UTF-8",
    }
    return httpx.get(f"{urls['inbound']}?{urlencode(query)}", timeout=10)
