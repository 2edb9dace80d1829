"""Each valid recipient's SMS estimated once, when it is checked: segments, cost and currency,
or the reason the outbox would refuse it.

The estimate puts the rendered SMS through the outbox's own accept path
(`outbox.accept.prepare_message`, nothing stored), so it is exactly what sending would give.
It is made for a *basis*, a fingerprint of everything it depends on: the mailing's text (or
its template's body), sender, connection, priority, validity and tag, and the whole SMS
configuration with its routes and connections. When any of these changes the basis changes,
the stored estimates are cleared (`store.mailing_estimates.use_basis`) and the next summary
makes them again, a page at a time, outside the writer.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr
from sqlalchemy import Connection

from smsdesk.domain.errors import DomainError
from smsdesk.domain.mailings import Mailing, MailingProblem, render
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.host import Host
from smsdesk.outbox.accept import NewMessage, prepare_message
from smsdesk.store import mailing_estimates as store
from smsdesk.store.mailings import MailingNotFound, get_mailing
from smsdesk.store.templates import get_template

PAGE = 1000  # recipients estimated per read and per writer job
_VERSION = "1"  # part of every basis: change it when the estimate itself changes


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


def _canonical(value: Any) -> Any:
    """A value as plain JSON data in one order whatever the process (sets sorted, secrets
    left out), so the same configuration gives the same basis in every process."""
    if isinstance(value, BaseModel):
        return _canonical(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, SecretStr | SecretBytes):
        return "secret"
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((_canonical(v) for v in value), key=lambda v: json.dumps(v, default=str))
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, enum.Enum):
        return _canonical(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def basis_of(config: SmsConfiguration, mailing: Mailing, text: str) -> str:
    """The fingerprint of everything a recipient's estimate depends on besides the recipient."""
    spec = mailing.spec
    parts = {
        "version": _VERSION,
        "text": text,
        "message": [spec.sender, spec.connection, spec.priority, spec.validity_hours],
        "tag": spec.tags[0] if spec.tags else None,
        "config": _canonical(config),
        "routing": _canonical(config.routing),
    }
    encoded = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()


@dataclass(frozen=True)
class Estimator:
    """Estimates recipients of one mailing against one configuration."""

    mailing: Mailing
    text: str
    config: SmsConfiguration
    basis: str
    now: float

    def estimate(self, row: Any) -> dict[str, Any]:
        """One recipient's estimate (row: id, number, customer_name, variables)."""
        found: dict[str, Any] = {
            "id": row.id,
            "segments": None,
            "cost": None,
            "currency": None,
            "refusal": None,
        }
        try:
            rendered = render(self.text, values_for(row.number, row.customer_name, row.variables))
            prepared = prepare_message(
                new_message(self.mailing, row.number, rendered), self.config, self.now
            )
        except DomainError as exc:
            found["refusal"] = exc.message
            return found
        found["segments"] = int(prepared["segments"])
        cost, currency = prepared.get("estimated_cost"), prepared.get("cost_currency")
        if cost is not None and currency is not None:
            found["cost"], found["currency"] = float(cost), currency
        return found


def estimator(host: Host, mailing_id: str) -> Estimator:
    """The estimator of the mailing as it is now (MailingProblem when its template is gone)."""
    with host.engine.connect() as conn:
        mailing = get_mailing(conn, mailing_id)
        if mailing is None:
            raise MailingNotFound(mailing_id)
        text = mailing_text(conn, mailing)
    config = host.settings.load()
    return Estimator(mailing, text, config, basis_of(config, mailing, text), host.clock())


def adopt(host: Host, found: Estimator) -> None:
    """Clear the mailing's estimates if they were made for another basis (cheap when not)."""
    with host.engine.connect() as conn:
        current = store.stored_basis(conn, found.mailing.id)
    if current != found.basis:
        now = host.clock()
        host.writer.run_sync(lambda conn: store.use_basis(conn, found.mailing.id, found.basis, now))


def estimate_missing(
    host: Host, found: Estimator, *, after: int = 0, upto: int | None = None
) -> int:
    """Estimate the mailing's valid recipients that have no estimate (ids after `after`, up
    to `upto`), a page at a time: rendered outside any transaction, stored in one short
    writer job per page. How many were estimated."""
    done = 0
    mailing_id = found.mailing.id
    while True:
        with host.engine.connect() as conn:
            page = store.unestimated(conn, mailing_id, after=after, upto=upto, limit=PAGE)
        if not page:
            return done
        estimates = [found.estimate(row) for row in page]
        now = host.clock()
        host.writer.run_sync(
            lambda conn, e=estimates, at=now: store.save_estimates(  # type: ignore[misc]
                conn, mailing_id, found.basis, e, at
            )
        )
        done += len(page)
        after = page[-1].id
        if len(page) < PAGE:
            return done
