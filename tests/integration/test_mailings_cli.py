"""`smsdesk mailings`: a mailing created, filled, checked, tested, sent and followed from a
shell, with one plain error line for whatever is refused."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from smsdesk.cli import app
from tests.conftest import database_url
from tests.support.cli import cli_runner, fails, ok
from tests.support.harness import running_service

CSV = "number;first_name\n0612345671;Anna\n0612345672;Bob\nnot a number;Carl\n0612345671;Anna\n"


@pytest.fixture
def url(engine: Engine) -> str:
    return database_url(engine)


@pytest.fixture
def run(tmp_path: Path, url: str) -> CliRunner:
    runner = cli_runner(tmp_path / "data", SMSDESK_DATABASE_URL=url)
    ok(runner, "settings", "set", "default_country_code=+31")
    return runner


def created(output: str) -> str:
    found = re.search(r"created mailing (\w+)", output)
    assert found, output
    return found.group(1)


def test_a_mailing_is_created_filled_checked_previewed_and_tested(
    run: CliRunner, tmp_path: Path
) -> None:
    """Recipients from a CSV (with a progress bar) and a pasted list are checked and
    counted; the summary, the preview for the first recipient, the test SMS, the statistics
    and the CSV export all say the same mailing."""
    mailing_id = created(
        ok(
            run,
            "mailings",
            "create",
            "Summer sale",
            "--text",
            "Hi {first_name}!",
            "--override-consent",
            "--days",
            "mon,tue,wed,thu,fri",
            "--from",
            "09:00",
            "--to",
            "20:00",
            "--throttle",
            "600",
            "--tag",
            "sale",
        )
    )
    shown = ok(run, "mailings", "show", mailing_id)
    assert "Summer sale  [draft]" in shown
    assert "mon,tue,wed,thu,fri 09:00-20:00" in shown and "600/min" in shown
    listed = json.loads(ok(run, "mailings", "list", "--json"))
    assert [(m["id"], m["status"], m["tags"]) for m in listed] == [(mailing_id, "draft", ["sale"])]

    file = tmp_path / "people.csv"
    file.write_text(CSV, encoding="utf-8")
    result = run.invoke(app, ["mailings", "add", mailing_id, "--csv", str(file)])
    assert result.exit_code == 0, result.output
    assert "valid 2, invalid 1, duplicate 1, opted_out 0, no_consent 0, total 4" in result.stdout
    assert "line 4: not a number: invalid" in result.stdout
    assert "checking recipients" in result.stderr and "4/4" in result.stderr
    pasted = json.loads(
        ok(run, "mailings", "add", mailing_id, "--numbers", "0612345673, 0612345672", "--json")
    )
    assert pasted["counts"]["valid"] == 1 and pasted["counts"]["duplicate"] == 1

    summary = ok(run, "mailings", "summary", mailing_id)
    assert "valid 3, invalid 1, duplicate 2" in summary
    assert "2 SMS, 2 segments" in summary
    assert "refused 1: The text needs {first_name}" in summary
    preview = ok(run, "mailings", "preview", mailing_id)
    assert "to +31612345671: 8 characters, gsm7, 1 segment(s)" in preview
    assert "| Hi Anna!" in preview
    own = ok(run, "mailings", "test", mailing_id, "0612345670")  # no recipient: line 2's values
    assert "filled in with the values of line 2" in own
    tested = ok(run, "mailings", "test", mailing_id, "0612345672")
    assert re.search(r"test SMS \w+ queued to \+31612345672", tested), tested

    stats = json.loads(ok(run, "mailings", "stats", mailing_id, "--json"))
    assert (stats["mailing_status"], stats["recipients"], stats["valid"]) == ("draft", 6, 3)
    assert stats["status"]["waiting"] == 3
    output = tmp_path / "out.csv"
    ok(run, "mailings", "export", mailing_id, "--output", str(output))
    rows = list(csv.reader(io.StringIO(output.read_text(encoding="utf-8"))))
    assert len(rows) == 7 and rows[1][:4] == ["2", "0612345671", "+31612345671", "valid"]


def one_error(stderr: str) -> str:
    """The single error line a refused command printed."""
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    return stderr.removeprefix("error: ").strip()


def test_the_life_cycle_and_every_refusal_is_one_plain_line(run: CliRunner, tmp_path: Path) -> None:
    """Scheduled, started, paused, resumed and cancelled from the shell; an unknown id, a
    missing or unreadable file, a bad setting and a step the status does not allow each end
    the command with one line saying why."""
    assert (
        one_error(fails(run, "mailings", "show", "nope")) == "There is no mailing with id 'nope'."
    )
    assert one_error(fails(run, "mailings", "create", "X", "--text", "Hi", "--priority", "7")) == (
        "priority: Priority 7 does not exist; use 1 (fastest), 2 or 3."
    )
    assert "--days, --from and --to" in one_error(
        fails(run, "mailings", "create", "X", "--text", "Hi", "--days", "mon")
    )
    mailing_id = created(ok(run, "mailings", "create", "Notice", "--text", "Hi"))
    missing = tmp_path / "missing.csv"
    assert one_error(fails(run, "mailings", "add", mailing_id, "--csv", str(missing))) == (
        f"there is no file {missing}."
    )
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert one_error(fails(run, "mailings", "add", mailing_id, "--csv", str(empty)))
    assert "exactly one of" in one_error(fails(run, "mailings", "add", mailing_id))
    assert "is not a time" in one_error(
        fails(run, "mailings", "schedule", mailing_id, "--at", "tomorrow")
    )
    ok(run, "mailings", "add", mailing_id, "--numbers", "0612345671")
    assert one_error(fails(run, "mailings", "watch", mailing_id)) == (
        "the mailing is a draft; start or schedule it first."
    )

    scheduled = ok(run, "mailings", "schedule", mailing_id, "--at", "2030-01-07T09:00+01:00")
    assert scheduled.strip() == f"mailing {mailing_id} is scheduled"
    assert "scheduled:  2030-01-07T08:00:00" in ok(run, "mailings", "show", mailing_id)
    for step, status in (
        ("start", "sending"),
        ("pause", "paused"),
        ("resume", "sending"),
        ("cancel", "cancelled"),
    ):
        assert ok(run, "mailings", step, mailing_id).strip() == f"mailing {mailing_id} is {status}"
    assert one_error(fails(run, "mailings", "resume", mailing_id)) == (
        "status: A mailing that is cancelled cannot resume; only a mailing that is paused can."
    )
    assert "draft" in one_error(fails(run, "mailings", "add", mailing_id, "--numbers", "0612"))
    listed = json.loads(ok(run, "mailings", "list", "--status", "cancelled", "--json"))
    assert [m["id"] for m in listed] == [mailing_id]


async def test_customers_by_filter_and_watching_it_send(tmp_path: Path, url: str) -> None:
    """Customers chosen by language become the recipients; while a running smsdesk sends
    the mailing, `watch` shows a progress bar and ends with the figures once it is done."""
    data = tmp_path / "data"
    run = cli_runner(data, SMSDESK_DATABASE_URL=url)
    async with running_service(data, url) as h:
        await h.configure(
            default_country_code="+31", module_settings={"simulator": {"report_delay": 0.02}}
        )
        for name, number, language in (
            ("Anna", "0612345671", "nl"),
            ("Bob", "0612345672", "en"),
            ("Carl", "0612345673", "nl"),
        ):
            answer = await h.post(
                "/api/v1/customers", {"name": name, "numbers": [number], "language": language}
            )
            assert answer.status_code == 201, answer.text

        def cli(*args: str) -> str:
            return ok(run, "mailings", *args)

        mailing_id = created(
            await asyncio.to_thread(
                cli, "create", "Dutch news", "--text", "Hoi {customer.name}", "--override-consent"
            )
        )
        added = await asyncio.to_thread(cli, "add", mailing_id, "--customers", "--language", "nl")
        assert "valid 2, invalid 0" in added
        await asyncio.to_thread(cli, "start", mailing_id)
        sender = h.service.mailings
        assert sender is not None
        sender.wake()
        watched = await asyncio.to_thread(
            run.invoke, app, ["mailings", "watch", mailing_id, "--interval", "0.05"]
        )
        assert watched.exit_code == 0, watched.output
        assert "status done: 2 recipients, 2 valid" in watched.stdout
        assert "2/2" in watched.stderr and "done" in watched.stderr
        rows = (await h.get(f"/api/v1/mailings/{mailing_id}/recipients")).json()["recipients"]
        assert sorted(r["number"] for r in rows) == ["+31612345671", "+31612345673"]
