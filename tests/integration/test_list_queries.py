"""The list queries made fast for large installations find the same rows on both databases:
the requests search and the outbox's pages over several statuses."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from smsdesk.store.groups import find_in_view
from smsdesk.store.outbox_admin import MessageSearch, search_messages
from smsdesk.store.tables import customer_numbers, customers, messages, requests

STATUSES = ("queued", "delivered", "failed", "expired", "sent", "undelivered")


def _message(n: int, status: str, module: str) -> dict[str, Any]:
    return {
        "id": f"01K{n:023d}",
        "module": module,
        "recipient": f"+3161234{n:04d}",
        "sender": "smsdesk",
        "body": f"Message {n}",
        "encoding": "GSM7",
        "segments": 1,
        "priority": 2,
        "status": status,
        "created_at": 1000.0 + n,
        "updated_at": 1000.0 + n,
        "next_attempt_at": 1000.0 + n,
        "expires_at": 9000.0 + n,
        "attempts": 0,
        "is_test": False,
        "delivery_report": True,
        "transactional": False,
    }


def test_outbox_pages_of_several_statuses_are_newest_first(engine: Engine) -> None:
    """Paging a search of several statuses gives every matching message once, newest first."""
    rows = [_message(n, STATUSES[n * 7 % 6], ("cm", "twilio")[n % 3 == 0]) for n in range(60)]
    with engine.begin() as conn:
        conn.execute(messages.insert(), rows)
    for search in (
        MessageSearch(statuses=("queued", "failed", "expired")),
        MessageSearch(statuses=("queued", "failed", "expired"), module="twilio"),
    ):
        wanted = sorted(
            (r["id"] for r in rows if r["status"] in (search.statuses or ()))
            if search.module is None
            else (
                r["id"]
                for r in rows
                if r["status"] in (search.statuses or ()) and r["module"] == search.module
            ),
            reverse=True,
        )
        found: list[str] = []
        cursor: str | None = None
        with engine.connect() as conn:
            while page := search_messages(conn, search, before_id=cursor, limit=4):
                found += [row.id for row in page]
                cursor = page[-1].id
        assert found == wanted


def test_the_requests_search_finds_title_name_and_number(engine: Engine) -> None:
    """A search matches part of a request's title, its customer's name in any case, or one of
    the customer's numbers, and `%` is a character like any other."""
    people = [("C1", "Anna de Vries", "+31687654321"), ("C2", "Bob", "+31611112222")]
    titles = [("R1", "C1", "Broken screen"), ("R2", "C2", "50% off?"), ("R3", "C2", "Invoice")]
    with engine.begin() as conn:
        conn.execute(
            customers.insert(),
            [
                {"id": c, "name": name, "language": "en", "created_at": 1.0, "updated_at": 1.0}
                for c, name, _ in people
            ],
        )
        conn.execute(
            customer_numbers.insert(), [{"number": n, "customer_id": c} for c, _, n in people]
        )
        conn.execute(
            requests.insert(),
            [
                {
                    "id": r, "title": title, "status": "open", "category": "SMS",
                    "priority": "normal", "language": "en", "customer_id": c,
                    "session_key": f"s{r}", "created_at": 1.0, "updated_at": 1.0,
                    "last_activity_at": 1.0, "out_of_hours": False,
                }
                for r, c, title in titles
            ],
        )  # fmt: skip

    def ids(search: str) -> list[str]:
        with engine.connect() as conn:
            return [row.id for row in find_in_view(conn, "all", 1, "all", search, None, 50)]

    assert ids("SCREEN") == ["R1"]
    assert ids("de vries") == ["R1"]
    assert ids("87654") == ["R1"]
    assert ids("bob") == ["R3", "R2"]
    assert ids("50%") == ["R2"]
    assert ids("0%") == ["R2"]
    assert ids("nobody") == []
