"""`smsdesk groups hours`: showing and changing a group's opening hours from a shell."""

from __future__ import annotations

from typer.testing import CliRunner

from smsdesk.cli import app
from tests.support.cli import ok


def test_hours_holidays_zone_and_answer_from_the_command_line(run: CliRunner) -> None:
    """Days given are set and the others kept; holidays replace the list; mistakes are named
    and change nothing."""
    ok(run, "groups", "add", "Service")
    assert "open around the clock" in ok(run, "groups", "hours", "Service")

    shown = ok(
        run, "groups", "hours", "service", "--mon", "09:00-12:00, 13:00-17:30",
        "--fri", "09:00-16:00", "--holiday", "2026-12-25", "--holiday", "2026-12-26",
        "--time-zone", "Europe/Amsterdam", "--reply", "We are closed; back at 09:00.",
    )  # fmt: skip
    assert "Service  (Europe/Amsterdam)" in shown
    assert "mon  09:00-12:00, 13:00-17:30" in shown and "tue  closed" in shown
    assert "holidays  2026-12-25 2026-12-26" in shown
    assert "answer  We are closed; back at 09:00." in shown

    changed = ok(run, "groups", "hours", "Service", "--fri", "", "--sat", "10:00-12:00")
    assert "mon  09:00-12:00, 13:00-17:30" in changed
    assert "fri  closed" in changed and "sat  10:00-12:00" in changed

    refused = run.invoke(app, ["groups", "hours", "Service", "--sun", "22:00-02:00"])
    assert refused.exit_code == 1 and "crosses midnight" in refused.stderr
    refused = run.invoke(app, ["groups", "hours", "Service", "--time-zone", "Europe/Atlantis"])
    assert refused.exit_code == 1 and "'Europe/Atlantis' is not a time zone" in refused.stderr
    assert "sun  closed" in ok(run, "groups", "hours", "Service")

    cleared = ok(run, "groups", "hours", "Service", "--always-open", "--no-holidays", "--reply", "")
    assert "open around the clock" in cleared
    assert "holidays  none" in cleared and "answer  (none)" in cleared
