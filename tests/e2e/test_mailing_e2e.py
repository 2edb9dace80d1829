"""A mailing through `smsdesk serve` and the Kannel stand-in on loopback, as an administrator
runs one through the API: 1,000 rows uploaded and checked, the valid ones each sent once and
delivered by Kannel's own delivery reports, the blocked ones counted under their reasons, a
STOP reply withdrawing consent; and pause, resume and cancel while it sends."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import database_url
from tests.support.kannel_standin import KannelStandIn
from tests.support.mailing_run import (
    accounted,
    act,
    api_client,
    blocked_numbers,
    configure_kannel,
    create_mailing,
    kannel_inbound,
    mailing_status,
    mobile,
    nonzero,
    ok,
    prepare_audience,
    recipients_file,
    statistics,
    upload,
)
from tests.support.processes import Processes, Server, smsdesk_env, wait_until

pytestmark = pytest.mark.slow

OUR_NUMBER = "+3197010200300"


@pytest.fixture
def standin() -> Iterator[KannelStandIn]:
    with KannelStandIn(round_trip=(0.001, 0.005), report_delay=0.02, seed=16) as started:
        yield started


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> str:
    """The database URL `serve` runs on: "" for its own SQLite file, or a fresh PostgreSQL
    database."""
    if request.param == "sqlite":
        return ""
    return database_url(request.getfixturevalue("pg_engine"))


def serve(
    processes: Processes, tmp_path: Path, database: str, standin: KannelStandIn
) -> tuple[Server, httpx.Client]:
    settings: dict[str, str | Path] = {"data_dir": tmp_path / "data"}
    if database:
        settings["database_url"] = database
    server = processes.server(smsdesk_env(**settings)).wait_ready()
    key = server.first_key()
    assert key is not None, server.output()
    client = api_client(server.url, key)
    configure_kannel(client, standin)
    return server, client


def settled(
    client: httpx.Client, mailing_id: str, busy: tuple[str, ...] = ("waiting",)
) -> dict[str, Any] | None:
    """The statistics once no recipient of the mailing waits (unless paused), is queued, is
    being sent or waits for its delivery report."""
    stats = statistics(client, mailing_id)
    still = {*busy, "queued", "sending", "sent"} & set(nonzero(stats["status"]))
    return None if still else stats


def test_a_thousand_row_mailing_is_delivered_once_each_and_counts_the_blocked(
    processes: Processes, tmp_path: Path, standin: KannelStandIn, database: str
) -> None:
    """986 of 1,000 rows reach Kannel, each exactly once, and are delivered by its reports;
    the 3 invalid, 2 duplicate, 4 opted-out and 5 non-consenting rows are counted under their
    reason and never sent; a STOP reply withdraws the customer's consent and opts out."""
    server, client = serve(processes, tmp_path, database, standin)
    recipients = recipients_file(986)
    customers = prepare_audience(client, recipients)
    mailing_id = create_mailing(client)

    report = upload(client, mailing_id, recipients.csv)
    assert report["counts"] == recipients.counts()
    summary = ok(client.get(f"/api/v1/mailings/{mailing_id}/summary"))
    assert (summary["counts"], summary["messages"]) == (recipients.counts(), 986)
    assert act(client, mailing_id, "start")["status"] == "sending"

    wait_until(lambda: mailing_status(client, mailing_id) == "done", "the mailing done", 120)
    stats = wait_until(lambda: settled(client, mailing_id), "every report applied", 60)
    assert nonzero(stats["status"]) == {"delivered": 986}
    assert nonzero(stats["blocked"]) == {
        "invalid": 3,
        "duplicate": 2,
        "opted_out": 4,
        "no_consent": 5,
    }
    assert accounted(stats) == stats["recipients"] == 1000
    assert blocked_numbers(client, mailing_id, "invalid") == recipients.invalid
    assert blocked_numbers(client, mailing_id, "duplicate") == recipients.duplicates
    assert blocked_numbers(client, mailing_id, "opted_out") == recipients.opted_out
    assert blocked_numbers(client, mailing_id, "no_consent") == recipients.no_consent
    times = Counter(r.to for r in standin.received())
    assert sorted(times) == sorted(recipients.valid) and set(times.values()) == {1}
    assert all(r.delivered_at is not None for r in standin.reports())
    rows = ok(client.get(f"/api/v1/mailings/{mailing_id}/recipients", params={"limit": 20}))
    first = rows["recipients"][0]
    assert (first["number"], first["status"]) == (recipients.valid[0], "delivered")

    replier = recipients.valid[42]
    assert kannel_inbound(client, replier, OUR_NUMBER, "STOP").is_success
    consent_url = f"/api/v1/mailings/consents/{customers[replier]}"
    wait_until(lambda: ok(client.get(consent_url))["state"] == "withdrawn", "consent withdrawn", 20)
    assert ok(client.get(consent_url))["source"] == "sms"
    opted = ok(client.get("/api/v1/opt-outs", params={"search": replier}))["opt_outs"]
    assert [(o["number"], o["keyword"], o["source"]) for o in opted] == [(replier, "STOP", "sms")]
    replied = statistics(client, mailing_id)
    assert (replied["replies"], replied["opt_outs"]) == (1, 1)
    client.close()
    assert server.stop() == 0, server.output()


def probe(client: httpx.Client, standin: KannelStandIn, number: str) -> None:
    """A one-recipient mailing, started and done, its SMS at Kannel and its report back:
    the mailing sender and the dispatcher have both run since this was called."""
    before = standin.count()
    mailing_id = create_mailing(client, name="Probe", text="Probe", override_consent=True)
    ok(client.post(f"/api/v1/mailings/{mailing_id}/recipients", json={"numbers": [number]}))
    act(client, mailing_id, "start")
    wait_until(lambda: mailing_status(client, mailing_id) == "done", "the probe mailing done", 30)
    wait_until(lambda: settled(client, mailing_id), "the probe SMS delivered", 30)
    assert [r.to for r in standin.received()[before:]] == [number]


def test_pause_resume_and_cancel_while_sending(
    processes: Processes, tmp_path: Path, standin: KannelStandIn
) -> None:
    """Throttled to 10 SMS a second: a pause stops what reaches Kannel, a resume goes on, a
    cancel ends it for good; the counts add up to every recipient at each step, and neither
    while paused nor after the cancel does an SMS of the mailing reach Kannel."""
    server, client = serve(processes, tmp_path, "", standin)
    numbers = [mobile(i) for i in range(300)]
    mailing_id = create_mailing(
        client, text="Maintenance tonight", override_consent=True, throttle_per_minute=600
    )
    upload(client, mailing_id, ("mobile\n" + "\n".join(numbers) + "\n").encode())
    act(client, mailing_id, "start")

    wait_until(lambda: standin.count() >= 20, "20 SMS at Kannel", 30)
    assert act(client, mailing_id, "pause")["status"] == "paused"
    paused = wait_until(lambda: settled(client, mailing_id, busy=()), "the pause settled", 30)
    at_pause = standin.count()
    assert accounted(paused) == 300 and at_pause < 300
    assert nonzero(paused["status"]) == {"delivered": at_pause, "waiting": 300 - at_pause}
    probe(client, standin, mobile(900))
    assert statistics(client, mailing_id) == paused

    assert act(client, mailing_id, "resume")["status"] == "sending"
    wait_until(lambda: standin.count() >= at_pause + 21, "20 more SMS at Kannel", 30)
    assert act(client, mailing_id, "cancel")["status"] == "cancelled"
    cancelled = wait_until(lambda: settled(client, mailing_id), "the cancel settled", 30)
    at_cancel = standin.count() - 1  # the probe's
    assert at_pause + 20 <= at_cancel < 300
    assert nonzero(cancelled["status"]) == {"delivered": at_cancel, "cancelled": 300 - at_cancel}
    assert accounted(cancelled) == 300
    probe(client, standin, mobile(901))
    assert statistics(client, mailing_id) == cancelled
    sent_to = Counter(r.to for r in standin.received())
    assert sum(sent_to[n] for n in numbers) == at_cancel and set(sent_to.values()) == {1}
    client.close()
    assert server.stop() == 0, server.output()
