"""How `smsdesk mailings` prints a mailing, a check report and statistics."""

from __future__ import annotations

from typing import Any, TextIO

from smsdesk.commands.common import out, when
from smsdesk.domain.mailings import Mailing, Status
from smsdesk.host import Host
from smsdesk.mailings.stats import export_csv

FINISHED = frozenset({Status.DONE, Status.CANCELLED, Status.PAUSED})  # `watch` stops at these
PROBLEMS_SHOWN = 20


def _line(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def print_mailing(mailing: Mailing) -> None:
    spec = mailing.spec
    _line(f"{mailing.id}  {spec.name}  [{mailing.status.value}]")
    window = spec.window.as_dict() if spec.window else None
    facts = {
        "sender": spec.sender or "(configured)",
        "connection": spec.connection or "(routes)",
        "priority": str(spec.priority),
        "window": f"{','.join(window['days'])} {window['from']}-{window['to']}"
        if window
        else "any time",
        "throttle": f"{spec.throttle_per_minute}/min" if spec.throttle_per_minute else "none",
        "replies": spec.replies.value,
        "consent": "overridden" if spec.override_consent else "required",
        "tags": ", ".join(spec.tags) or "-",
        "scheduled": when(spec.scheduled_at) or "-",
        "started": when(mailing.started_at) or "-",
        "finished": when(mailing.finished_at) or "-",
    }
    for key, value in facts.items():
        _line(f"  {key + ':':<11} {value}")
    if spec.template_id:
        _line(f"  template:   {spec.template_id}")
    for text_line in (spec.text or "").splitlines():
        _line(f"  | {text_line}")


def print_report(report: dict[str, Any]) -> None:
    """The counts of an addition, and the first rows not valid."""
    counts = report["counts"]
    _line(", ".join(f"{key} {value}" for key, value in counts.items()))
    problems = report["problems"]
    for row in problems[:PROBLEMS_SHOWN]:
        _line(f"  line {row['line']}: {row['number']}: {row['result']}: {row['reason'] or ''}")
    left = len(problems) - PROBLEMS_SHOWN + int(report.get("problems_left_off", 0))
    if left > 0:
        _line(f"  … and {left} more (--json lists them)")


def progress_of(stats: dict[str, Any]) -> tuple[int, int]:
    """(recipients past the outbox, valid recipients): how far a sending mailing is."""
    status = stats["status"]
    pending = status.get("waiting", 0) + status.get("queued", 0) + status.get("sending", 0)
    return int(stats["valid"]) - pending, int(stats["valid"])


def print_stats(status: Status, stats: dict[str, Any]) -> None:
    _line(f"status {status.value}: {stats['recipients']} recipients, {stats['valid']} valid")
    shown = {k: v for k, v in stats["status"].items() if v}
    _line("messages: " + (", ".join(f"{k} {v}" for k, v in shown.items()) or "none"))
    blocked = {k: v for k, v in stats["blocked"].items() if v}
    _line("blocked: " + (", ".join(f"{k} {v}" for k, v in blocked.items()) or "none"))
    _line(f"replies {stats['replies']}, opt-outs {stats['opt_outs']}")


def write_export(host: Host, mailing_id: str, file: TextIO) -> int:
    """Write the mailing's recipients as CSV to `file`; how many rows."""
    rows = -1  # the header
    for chunk in export_csv(host, mailing_id):
        file.write(chunk)
        rows += chunk.count("\r\n")
    return max(rows, 0)
