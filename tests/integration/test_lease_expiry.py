"""A dispatcher that dies holding messages: each goes out again only when nothing shows the
provider took it (a kept-aside report naming our id, or the provider's own answer when asked),
and an answer from an earlier claim is never recorded over a later one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.domain.message import Status
from smsdesk.domain.sms import StatusReport
from smsdesk.providers.simulator import SimulatorProvider
from smsdesk.store import lease_expiry
from smsdesk.store import messages as repo
from smsdesk.store.reports import ADOPTED, apply_reports
from smsdesk.store.tables import messages, unmatched_reports
from tests.conftest import database_url
from tests.integration.test_store import NOW, claim, insert, make_row, status_of, write
from tests.support.harness import running_service

LATER = NOW + 61  # past the 60 s lease `claim` takes


def row_of(engine: Engine, message_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(messages).where(messages.c.id == message_id)).one()


def details(engine: Engine, message_id: str) -> list[str | None]:
    with engine.connect() as conn:
        return [e.detail for e in repo.get_timeline(conn, message_id)]


def report_naming(message_id: str, status: Status = Status.DELIVERED) -> StatusReport:
    """A report of a module whose provider id is our message id (Kannel, CM, CPSMS)."""
    return StatusReport(message_id, status, "DELIVRD:000")


def test_a_report_kept_aside_proves_the_send_and_nothing_goes_out_again(engine: Engine) -> None:
    """The dead dispatcher's provider took the message and reported it before the lease ran
    out: the message takes the report's status instead of being queued for a second send."""
    row = make_row()
    insert(engine, [row])
    claim(engine, owner="dead")
    kept = write(engine, lambda c: apply_reports(c, "simulator", [report_naming(row["id"])], NOW))
    assert kept.unmatched == 1 and status_of(engine, row["id"]) == "sending"

    released = write(engine, lambda c: lease_expiry.release_expired(c, LATER))

    assert (released.proven, released.requeued) == (1, 0)
    stored = row_of(engine, row["id"])
    assert (stored.status, stored.provider_message_id) == ("delivered", row["id"])
    assert lease_expiry.PROVEN_BY_REPORT in details(engine, row["id"])
    assert claim(engine, owner="alive", now=LATER) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(unmatched_reports)).scalar() == 0


def test_without_any_trace_the_message_is_queued_again(engine: Engine) -> None:
    """No report, no answer: the provider may never have seen it, so it is sent again."""
    row, other = make_row(), make_row()
    insert(engine, [row, other])
    claim(engine, owner="dead")
    write(engine, lambda c: apply_reports(c, "simulator", [report_naming(other["id"])], NOW))

    released = write(engine, lambda c: lease_expiry.release_expired(c, LATER))

    assert (released.proven, released.requeued) == (1, 1)
    assert status_of(engine, row["id"]) == "queued"
    assert [r.id for r in claim(engine, owner="alive", now=LATER)] == [row["id"]]


def test_a_report_after_the_requeue_keeps_the_message_from_a_second_send(engine: Engine) -> None:
    """The report came after the lease ran out but before the next attempt: the queued
    message is adopted as sent and takes the report's status."""
    row = make_row()
    insert(engine, [row])
    claim(engine, owner="dead")
    write(engine, lambda c: lease_expiry.release_expired(c, LATER))
    assert status_of(engine, row["id"]) == "queued"

    tally = write(
        engine, lambda c: apply_reports(c, "simulator", [report_naming(row["id"])], LATER + 1)
    )

    assert (tally.applied, tally.unmatched) == (1, 0)
    assert status_of(engine, row["id"]) == "delivered"
    assert ADOPTED in details(engine, row["id"])
    assert claim(engine, owner="alive", now=LATER + 2) == []


def test_a_report_never_adopts_a_message_that_was_never_tried(engine: Engine) -> None:
    """Only a message with an earlier attempt can have been taken by the provider."""
    row = make_row()
    insert(engine, [row])
    tally = write(engine, lambda c: apply_reports(c, "simulator", [report_naming(row["id"])], NOW))
    assert tally.unmatched == 1
    assert status_of(engine, row["id"]) == "queued"


def test_an_answer_from_an_earlier_claim_is_never_recorded(engine: Engine) -> None:
    """The same process claimed the message twice (its first claim ran out while it stalled):
    the stale answer of the first claim cannot overwrite the second one's."""
    row = make_row()
    insert(engine, [row])
    first = claim(engine, owner="w1")[0]
    write(engine, lambda c: lease_expiry.release_expired(c, LATER))
    second = claim(engine, owner="w1", now=LATER)[0]
    assert (first.attempts, second.attempts) == (1, 2)

    stale = repo.Outcome(row["id"], Status.FAILED, "X", "late answer", attempt=first.attempts)
    assert write(engine, lambda c: repo.record_outcomes(c, "w1", [stale], LATER + 1)) == 0
    assert status_of(engine, row["id"]) == "sending"
    fresh = repo.Outcome(row["id"], Status.SENT, "0", "ok", "P-2", attempt=second.attempts)
    assert write(engine, lambda c: repo.record_outcomes(c, "w1", [fresh], LATER + 1)) == 1
    assert row_of(engine, row["id"]).provider_message_id == "P-2"


def test_messages_of_an_askable_provider_wait_for_its_answer(engine: Engine) -> None:
    """Leased to the dispatcher that asks; what the provider took becomes sent with its id,
    what it does not know is queued again."""
    taken, unknown = make_row(), make_row()
    insert(engine, [taken, unknown])
    claim(engine, owner="dead")
    write(
        engine,
        lambda c: c.execute(messages.update().values(connection_id="default")),
    )

    released = write(
        engine,
        lambda c: lease_expiry.release_expired(
            c, LATER, askable={"default"}, owner="asker", lease_until=LATER + 60
        ),
    )
    assert sorted(r.id for r in released.to_ask) == sorted([taken["id"], unknown["id"]])
    assert {row_of(engine, i).lease_owner for i in (taken["id"], unknown["id"])} == {"asker"}
    assert claim(engine, owner="other", now=LATER + 1) == []

    write(
        engine,
        lambda c: lease_expiry.settle_asked(
            c, "asker", {taken["id"]: "SIM-1"}, [unknown["id"]], LATER + 1
        ),
    )
    stored = row_of(engine, taken["id"])
    assert (stored.status, stored.provider_message_id) == ("sent", "SIM-1")
    assert lease_expiry.PROVEN_BY_ASKING in details(engine, taken["id"])
    assert status_of(engine, unknown["id"]) == "queued"
    assert lease_expiry.NOT_AT_PROVIDER in details(engine, unknown["id"])


async def test_the_simulator_is_asked_before_a_dead_senders_message_goes_again(
    tmp_path: Path, engine: Engine
) -> None:
    """Through a running service: a message the simulator took, left *sending* by a
    dispatcher that died before recording the answer, is settled as sent with the
    simulator's id, and the simulator received it once."""
    async with running_service(tmp_path, database_url(engine)) as h:
        await h.configure(module_settings={"simulator": {"report_delay": 3600}})
        sent = await h.post("/api/v1/messages", {"to": "+31612345678", "text": "once"})
        assert sent.status_code == 201, sent.text
        message_id = sent.json()["id"]
        first = await h.wait_for(message_id, "sent")
        dispatcher = h.service.dispatcher
        assert dispatcher is not None
        now = h.service.clock()
        write(
            engine,
            lambda c: c.execute(
                messages.update()
                .where(messages.c.id == message_id)
                .values(
                    status="sending",
                    provider_message_id=None,
                    lease_owner="dead",
                    lease_until=now - 1,
                )
            ),
        )

        dispatcher._housekeeping_at = dispatcher._release_after = 0.0
        again = await h.wait_for(message_id, "sent")

        assert again["provider_message_id"] == first["provider_message_id"]
        pool = h.service.pool
        assert pool is not None
        _, provider = next(iter(pool._providers.values()))
        assert isinstance(provider, SimulatorProvider)
        ledger = provider.ledger
        assert ledger.attempts_by_reference()[message_id] == 1
