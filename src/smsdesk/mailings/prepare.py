"""What a checked mailing would send: counts, segments and cost, a preview per recipient, and
a test SMS to one's own number.

Each valid recipient's SMS is estimated once, when it is checked, through the outbox's own
accept path (`mailings.estimates`), so the segments, the route and its estimated cost are
exactly what sending would give, and a recipient the outbox would refuse (a country outside
the allowed ones, a text too long once filled in) is counted with the reason before the send
is confirmed. The summary sums those estimates in SQL; after a change of the text or the
configuration it first makes the missing ones again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from smsdesk.domain.encoding import analyse
from smsdesk.domain.errors import DomainError
from smsdesk.domain.mailing_checks import CheckCounts
from smsdesk.domain.mailings import render
from smsdesk.domain.phone import normalise_msisdn
from smsdesk.domain.routing import COST_PLACES
from smsdesk.host import Host, SendingHost
from smsdesk.mailings import estimates, get_mailing
from smsdesk.mailings.estimates import mailing_text, new_message, values_for
from smsdesk.outbox.accept import opted_out_refusals, prepare_message
from smsdesk.store import mailings as store
from smsdesk.store.customers import customer_by_number
from smsdesk.store.mailing_estimates import estimate_totals
from smsdesk.store.messages import insert_messages

__all__ = [
    "Summary",
    "mailing_text",
    "new_message",
    "preview",
    "send_test",
    "summarise",
    "values_for",
]


@dataclass
class Summary:
    counts: CheckCounts
    messages: int = 0
    segments: int = 0
    cost: dict[str, Decimal] = field(default_factory=dict)  # by currency
    unpriced: int = 0  # messages whose route has no price
    refused: Counter[str] = field(default_factory=Counter)  # reason -> recipients

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts.as_dict(),
            "messages": self.messages,
            "segments": self.segments,
            "estimated_cost": {cur: str(amount) for cur, amount in sorted(self.cost.items())},
            "unpriced_messages": self.unpriced,
            "refused": [{"reason": r, "recipients": n} for r, n in self.refused.most_common()],
        }


def summarise(host: Host, mailing_id: str) -> Summary:
    """The counts by check result, and the SMS, segments and cost of the valid recipients:
    sums of their stored estimates, the missing ones (after a change of text or
    configuration) estimated first."""
    found = estimates.estimator(host, mailing_id)
    estimates.adopt(host, found)
    with host.engine.connect() as conn:
        totals = estimate_totals(conn, mailing_id)
    if any(row.missing for row in totals):
        estimates.estimate_missing(host, found)
        with host.engine.connect() as conn:
            totals = estimate_totals(conn, mailing_id)
    with host.engine.connect() as conn:
        summary = Summary(store.check_counts(conn, mailing_id))
    for row in totals:
        _add(summary, row)
    return summary


def _add(summary: Summary, row: Any) -> None:
    """One group of `store.mailing_estimates.estimate_totals` into the summary."""
    if row.refusal is not None:
        summary.refused[row.refusal] += int(row.recipients)
        return
    if row.missing:  # estimates cleared again while we summed: count them, unpriced
        summary.messages += int(row.recipients)
        summary.unpriced += int(row.recipients)
        return
    summary.messages += int(row.recipients)
    summary.segments += int(row.segments)
    if row.currency is None or row.cost is None:
        summary.unpriced += int(row.recipients)
        return
    amount = Decimal(repr(float(row.cost))).quantize(COST_PLACES)
    summary.cost[row.currency] = summary.cost.get(row.currency, Decimal(0)) + amount


def preview(
    host: Host, mailing_id: str, *, recipient_id: int | None = None, number: str | None = None
) -> dict[str, Any]:
    """The SMS one recipient would get (by recipient id, or any number, e.g. one's own):
    its text, encoding and segments; MailingProblem naming a variable it has no value for.

    A number that is no recipient (one's own, for a test) is filled in with the first valid
    (else the first) recipient's row values, and its customer name where the number has none,
    so a text with the CSV's columns can be tried on a phone; `values_from` names that line."""
    mailing = get_mailing(host, mailing_id)
    config = host.settings.load()
    values_from: int | None = None
    with host.engine.connect() as conn:
        text = mailing_text(conn, mailing)
        if recipient_id is not None:
            row = store.get_recipient(conn, mailing_id, recipient_id=recipient_id)
            if row is None:
                raise store.RecipientNotFound(mailing_id, str(recipient_id))
            e164, name, variables = row.number or row.given, row.customer_name, row.variables
        else:
            try:
                e164 = normalise_msisdn(number or "", config.default_country_code or None)
            except DomainError as exc:
                raise DomainError(exc.message, field="number") from None
            row = store.get_recipient(conn, mailing_id, number=e164)
            customer = customer_by_number(conn, e164)
            name = customer.name if customer else None
            variables = row.variables if row is not None else None
            if row is None:
                sample = store.sample_recipient(conn, mailing_id)
                if sample is not None:
                    name, variables = name or sample.customer_name, sample.variables
                    values_from = sample.line
    rendered = render(text, values_for(e164, name, variables))
    analysed = analyse(rendered)
    return {
        "values_from": values_from,
        "to": e164,
        "text": rendered,
        "encoding": analysed.encoding.value,
        "segments": analysed.segments,
        "characters": len(rendered),
    }


def send_test(host: SendingHost, mailing_id: str, number: str) -> dict[str, Any]:
    """Queue the mailing's SMS to one number (one's own) as a normal message, at once and
    whatever the mailing's status, window or throttle: what that number would get, to see it
    on a phone before the mailing starts. Its message id and the text."""
    shown = preview(host, mailing_id, number=number)
    mailing = get_mailing(host, mailing_id)
    config = host.settings.load()
    row = prepare_message(new_message(mailing, shown["to"], shown["text"]), config, host.clock())
    row["priority"] = 1  # a person is waiting for it

    def job(conn: Connection) -> None:
        refusal = opted_out_refusals(conn, [row]).get(0)
        if refusal is not None:
            raise refusal
        insert_messages(conn, [row], "mailing-test")

    host.writer.run_sync(job)
    host.wake_dispatcher()
    return {**shown, "message_id": row["id"]}
