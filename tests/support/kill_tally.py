"""What a kill test left behind: messages lost, messages sent twice, and whether smsdesk could
have known better when it sent one again.

A message sent twice "had evidence" when a delivery report of an earlier send had reached
smsdesk (answered 2xx, so stored) before the claim that sent it again: smsdesk held proof the
provider took it and sent it anyway. Otherwise it was "in flight with no trace": the dead or
frozen process was the only one that knew, and nothing had come back yet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store.tables import message_events, messages
from tests.support.kannel_standin import KannelStandIn, Received, Report


@dataclass(frozen=True)
class Duplicate:
    """A message the stand-in received more than once."""

    message_id: str
    sends: tuple[float, ...]  # when each request arrived
    evidence: bool
    report_at: float | None  # first report of an earlier send that smsdesk took
    claimed_at: float | None  # the claim that sent it the second time
    after_disruption: float | None  # seconds from its first send to the nearest kill or freeze
    report_failure: str = ""  # why the first send's report did not get in sooner, if it failed

    def describe(self) -> str:
        kind = "had evidence" if self.evidence else "in flight with no trace"
        first = self.sends[0]
        gaps = ", ".join(f"+{at - first:.2f} s" for at in self.sends[1:])
        report = "none" if self.report_at is None else f"+{self.report_at - first:.2f} s"
        claim = "?" if self.claimed_at is None else f"+{self.claimed_at - first:.2f} s"
        near = "" if self.after_disruption is None else f"{self.after_disruption:+.2f} s to"
        failed = f" (its tries failed: {self.report_failure})" if self.report_failure else ""
        return (
            f"{self.message_id}: {kind}; sent again {gaps}, report taken {report}{failed}, "
            f"claimed again {claim}, first send {near} the nearest kill/freeze"
        )


@dataclass
class KillFigures:
    """One run's result."""

    database: str
    messages: int
    kills: int
    freezes: int
    seconds: float = 0.0
    restart_seconds: float = 0.0  # median, from a kill until its replacement was ready
    lost: int = 0  # accepted, never reached the stand-in
    not_final: int = 0  # accepted, not delivered at the end
    doubled: int = 0  # messages the stand-in received more than once
    extra_sends: int = 0  # requests beyond the first, over all messages
    had_evidence: int = 0
    no_trace: int = 0
    duplicates: list[Duplicate] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.messages} messages, {self.kills} kills + {self.freezes} freezes in "
            f"{self.seconds:.0f} s (restarts {self.restart_seconds:.1f} s): lost {self.lost}, "
            f"not final {self.not_final}, sent twice {self.doubled} ({self.extra_sends} extra "
            f"sends): {self.no_trace} in flight with no trace, {self.had_evidence} had evidence"
        )


def statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(messages.c.id, messages.c.status))
        return {str(i): str(status) for i, status in rows}


def claim_times(engine: Engine, ids: Sequence[str]) -> dict[str, list[float]]:
    """When each message was claimed for sending (its 'sending' timeline lines)."""
    query = sa.select(message_events.c.message_id, message_events.c.at).where(
        message_events.c.message_id.in_(list(ids)),
        message_events.c.status == "sending",
        message_events.c.source == "dispatcher",
    )
    found: dict[str, list[float]] = defaultdict(list)
    if not ids:
        return found
    with engine.connect() as conn:
        for message_id, at in conn.execute(query):
            found[str(message_id)].append(float(at))
    return found


def _duplicate(
    message_id: str,
    sends: list[Received],
    reports: dict[int, Report],
    claims: list[float],
    disruptions: Sequence[float],
) -> Duplicate:
    evidence = False
    first_report: float | None = None
    first_reclaim: float | None = None
    for k in range(1, len(sends)):
        at = sends[k].at
        claim = max((c for c in claims if c <= at), default=None)
        taken = [
            reports[s.index].delivered_at
            for s in sends[:k]
            if s.index in reports and reports[s.index].delivered_at is not None
        ]
        report = min((t for t in taken if t is not None), default=None)
        if k == 1:
            first_report, first_reclaim = report, claim
        if claim is not None and report is not None and report < claim:
            evidence = True
    start = sends[0].at
    near = min((t - start for t in disruptions), key=abs, default=None)
    times = tuple(s.at for s in sends)
    first = reports.get(sends[0].index)
    failure = (
        f"{first.attempts} tries, last {first.last_failure}" if first and first.last_failure else ""
    )
    return Duplicate(message_id, times, evidence, first_report, first_reclaim, near, failure)


def tally(
    figures: KillFigures,
    accepted: Sequence[str],
    standin: KannelStandIn,
    engine: Engine,
    disruptions: Sequence[float],
) -> KillFigures:
    """Fill `figures` from the stand-in's records and the database."""
    by_id: dict[str, list[Received]] = defaultdict(list)
    for received in standin.received():
        by_id[received.message_id].append(received)
    reports = {report.send_index: report for report in standin.reports()}
    final = statuses(engine)
    figures.lost = sum(1 for i in accepted if i not in by_id)
    figures.not_final = sum(1 for i in accepted if final.get(i) != "delivered")
    doubled = sorted(i for i in accepted if len(by_id.get(i, [])) > 1)
    figures.doubled = len(doubled)
    figures.extra_sends = sum(len(by_id[i]) - 1 for i in doubled)
    claims = claim_times(engine, doubled)
    figures.duplicates = [
        _duplicate(i, sorted(by_id[i], key=lambda r: r.at), reports, claims[i], disruptions)
        for i in doubled
    ]
    figures.had_evidence = sum(1 for d in figures.duplicates if d.evidence)
    figures.no_trace = figures.doubled - figures.had_evidence
    return figures
