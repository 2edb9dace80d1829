"""What a checked mailing would send: counts, segments and cost, a preview per recipient, and
a test SMS to one's own number.

Each valid recipient's SMS is rendered and put through the outbox's own accept path
(`outbox.accept.prepare_message`, nothing stored), so the segments, the route and its estimated
cost are exactly what sending would give, and a recipient the outbox would refuse (a country
outside the allowed ones, a text too long once filled in) is counted with the reason before
the send is confirmed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from smsdesk.domain.encoding import analyse
from smsdesk.domain.errors import DomainError
from smsdesk.domain.mailing_checks import CheckCounts
from smsdesk.domain.mailings import Mailing, MailingProblem, render
from smsdesk.domain.phone import normalise_msisdn
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.host import Host, SendingHost
from smsdesk.mailings import get_mailing
from smsdesk.outbox.accept import NewMessage, opted_out_refusals, prepare_message
from smsdesk.store import mailings as store
from smsdesk.store.customers import customer_by_number
from smsdesk.store.messages import insert_messages
from smsdesk.store.templates import get_template

PAGE = 1000


def mailing_text(conn: Connection, mailing: Mailing) -> str:
    """The mailing's own text, or its reply template's body."""
    spec = mailing.spec
    if spec.text is not None:
        return spec.text
    template = get_template(conn, spec.template_id or "")
    if template is None:
        raise MailingProblem(
            "The reply template {template} no longer exists; choose another or write a text.",
            field="template_id",
            template=spec.template_id,
        )
    return template.body


def values_for(number: str, customer_name: str | None, variables: str | None) -> dict[str, str]:
    """What a recipient's placeholders are filled with: its row's own values and customer."""
    values: dict[str, str] = dict(json.loads(variables)) if variables else {}
    values["customer.number"] = number
    if customer_name:
        values["customer.name"] = customer_name
    return values


def new_message(mailing: Mailing, number: str, text: str) -> NewMessage:
    """The outbox request of one recipient's SMS."""
    spec = mailing.spec
    return NewMessage(
        to=number,
        text=text,
        sender=spec.sender,
        priority=spec.priority,
        validity_hours=spec.validity_hours,
        connection=spec.connection,
        tag=spec.tags[0] if spec.tags else None,
    )


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


def _estimate(summary: Summary, row: dict[str, Any]) -> None:
    summary.messages += 1
    summary.segments += int(row["segments"])
    cost, currency = row.get("estimated_cost"), row.get("cost_currency")
    if cost is None or currency is None:
        summary.unpriced += 1
    else:
        summary.cost[currency] = summary.cost.get(currency, Decimal(0)) + Decimal(str(cost))


def summarise(host: Host, mailing_id: str) -> Summary:
    """The counts by check result, and the SMS, segments and cost of the valid recipients."""
    mailing = get_mailing(host, mailing_id)
    config = host.settings.load()
    now = host.clock()
    with host.engine.connect() as conn:
        summary = Summary(store.check_counts(conn, mailing_id))
        text = mailing_text(conn, mailing)
        after = 0
        while page := store.valid_recipients(conn, mailing_id, after=after, limit=PAGE):
            for row in page:
                _add(summary, mailing, text, row, config, now)
            after = page[-1].id
    return summary


def _add(
    summary: Summary,
    mailing: Mailing,
    text: str,
    row: Any,
    config: SmsConfiguration,
    now: float,
) -> None:
    try:
        rendered = render(text, values_for(row.number, row.customer_name, row.variables))
        _estimate(summary, prepare_message(new_message(mailing, row.number, rendered), config, now))
    except DomainError as exc:
        summary.refused[exc.message] += 1


def preview(
    host: Host, mailing_id: str, *, recipient_id: int | None = None, number: str | None = None
) -> dict[str, Any]:
    """The SMS one recipient would get (by recipient id, or any number, e.g. one's own):
    its text, encoding and segments; MailingProblem naming a variable it has no value for."""
    mailing = get_mailing(host, mailing_id)
    config = host.settings.load()
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
    rendered = render(text, values_for(e164, name, variables))
    analysed = analyse(rendered)
    return {
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
