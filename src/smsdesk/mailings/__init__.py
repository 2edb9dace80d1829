"""Mailings: one text to many recipients, checked before sending (see `domain.mailings`).

These are what the API (and later the screens and the CLI) call: create and change a draft,
add recipients from a CSV file, a pasted list or customers by filter, and move a mailing
through its life cycle. Recipients are checked and stored `store.mailings.CHUNK` at a time,
each chunk one writer job, so a large list neither holds the database nor fills memory, and
each valid recipient's SMS is estimated once as it is added (`estimates`); `prepare` says what
the checked mailing would send and cost, `stats` what it did.

An administrator's consent override is recorded in the audit trail when the mailing is saved
with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from smsdesk.domain.audit import Actor
from smsdesk.domain.mailing_checks import Check, CheckCounts, CheckedRecipient, RecipientInput
from smsdesk.domain.mailings import Mailing, MailingProblem, MailingSpec, Status, check_spec
from smsdesk.host import Host
from smsdesk.mailings import estimates
from smsdesk.mailings.sources import pasted, read_csv
from smsdesk.store import mailings as store
from smsdesk.store.audit import AuditTrail
from smsdesk.store.customers import CustomerNotFound, customer_exists
from smsdesk.store.mailing_audience import CustomerFilter, customers_page
from smsdesk.store.mailing_consents import consent_of, set_consents
from smsdesk.store.mailings import CHUNK, MailingNotFound

__all__ = [
    "AddReport",
    "CustomerFilter",
    "MailingNotFound",
    "add_csv",
    "add_customers",
    "add_pasted",
    "add_recipients",
    "consent",
    "create_mailing",
    "delete_mailing",
    "get_mailing",
    "list_mailings",
    "remove_recipients",
    "set_consent",
    "update_mailing",
]

MAX_PROBLEMS = 1000  # rows not valid that a report lists; the counts cover them all

Progress = Callable[[int], None]  # called with the number of rows checked so far


@dataclass
class AddReport:
    """What adding recipients did: the counts of this addition, and the rows not valid."""

    counts: CheckCounts = field(default_factory=CheckCounts)
    problems: list[CheckedRecipient] = field(default_factory=list)
    problems_left_off: int = 0
    file: dict[str, Any] | None = None  # how a CSV file was read

    def take(self, rows: Iterable[CheckedRecipient], counts: CheckCounts) -> None:
        for result in Check:
            self.counts.add(result, getattr(counts, result.value))
        for row in rows:
            if row.result is Check.VALID:
                continue
            if len(self.problems) < MAX_PROBLEMS:
                self.problems.append(row)
            else:
                self.problems_left_off += 1

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "counts": self.counts.as_dict(),
            "problems": [row.as_dict() for row in self.problems],
            "problems_left_off": self.problems_left_off,
        }
        if self.file is not None:
            body["file"] = self.file
        return body


def get_mailing(host: Host, mailing_id: str) -> Mailing:
    with host.engine.connect() as conn:
        found = store.get_mailing(conn, mailing_id)
    if found is None:
        raise MailingNotFound(mailing_id)
    return found


def list_mailings(
    host: Host, *, status: Status | None = None, before: str | None = None, limit: int = 50
) -> list[Mailing]:
    with host.engine.connect() as conn:
        return store.list_mailings(conn, status=status, before=before, limit=limit)


def _record_override(
    trail: AuditTrail | None, actor: Actor | None, mailing_id: str, spec: MailingSpec
) -> Callable[[Any], None]:
    def record(conn: Any) -> None:
        if trail is not None and actor is not None and spec.override_consent:
            trail.record(
                conn,
                actor,
                "mailing.consent_overridden",
                target_kind="mailing",
                target_id=mailing_id,
                details={"name": spec.name},
            )

    return record


def create_mailing(
    host: Host,
    spec: MailingSpec,
    *,
    actor: Actor | None = None,
    trail: AuditTrail | None = None,
) -> Mailing:
    """Save a new draft; MailingProblem (or the sender's, tags' refusals) naming the field."""
    checked = check_spec(spec)
    now = host.clock()

    def job(conn: Any) -> str:
        mailing_id = store.insert_mailing(
            conn, checked, now=now, created_by=actor.name if actor else None
        )
        _record_override(trail, actor, mailing_id, checked)(conn)
        return mailing_id

    return get_mailing(host, host.writer.run_sync(job))


def update_mailing(
    host: Host,
    mailing_id: str,
    spec: MailingSpec,
    *,
    actor: Actor | None = None,
    trail: AuditTrail | None = None,
) -> Mailing:
    """Replace a draft's settings (refused once it is scheduled or sending)."""
    checked = check_spec(spec)
    before = get_mailing(host, mailing_id)
    now = host.clock()

    def job(conn: Any) -> None:
        store.update_draft(conn, mailing_id, checked, now)
        if not before.spec.override_consent:
            _record_override(trail, actor, mailing_id, checked)(conn)

    host.writer.run_sync(job)
    return get_mailing(host, mailing_id)


def delete_mailing(host: Host, mailing_id: str) -> None:
    """Delete a draft with its recipients."""
    host.writer.run_sync(lambda conn: store.delete_draft(conn, mailing_id))


def remove_recipients(
    host: Host,
    mailing_id: str,
    *,
    result: Check | None = None,
    ids: Sequence[int] | None = None,
) -> int:
    """Remove a draft's recipients (all, those with one check result, or these ids); how many
    went. MailingProblem once the mailing is no draft."""
    return host.writer.run_sync(
        lambda conn: store.delete_recipients(conn, mailing_id, result=result, ids=ids)
    )


def _chunks(rows: Iterable[RecipientInput], size: int) -> Iterator[list[RecipientInput]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def add_recipients(
    host: Host,
    mailing_id: str,
    rows: Iterable[RecipientInput],
    *,
    progress: Progress | None = None,
) -> AddReport:
    """Check and store recipients a chunk at a time (only a draft takes recipients), and
    estimate each valid one's SMS once (`mailings.estimates`), outside the writer."""
    get_mailing(host, mailing_id)  # MailingNotFound before reading a large file
    config = host.settings.load()
    country = config.default_country_code or None
    estimator = _estimator(host, mailing_id)
    report, done = AddReport(), 0
    for chunk in _chunks(rows, CHUNK):
        added = host.writer.run_sync(
            lambda conn, chunk=chunk: store.check_and_add(  # type: ignore[misc]
                conn, mailing_id, chunk, default_country_code=country
            )
        )
        if estimator is not None:
            estimates.estimate_missing(
                host, estimator, after=added.first_id - 1, upto=added.last_id
            )
        report.take(added.report.rows, added.report.counts)
        done += len(chunk)
        if progress is not None:
            progress(done)
    return report


def _estimator(host: Host, mailing_id: str) -> estimates.Estimator | None:
    """The mailing's estimator, its basis adopted; None while its text cannot be made (its
    template is gone: the summary says so)."""
    try:
        found = estimates.estimator(host, mailing_id)
    except MailingProblem:
        return None
    estimates.adopt(host, found)
    return found


def add_csv(
    host: Host, mailing_id: str, data: bytes, *, progress: Progress | None = None
) -> AddReport:
    """Recipients from a CSV file (see `mailings.sources`), with how the file was read."""
    source = read_csv(data)
    report = add_recipients(host, mailing_id, source.rows(), progress=progress)
    report.file = {
        "encoding": source.encoding,
        "delimiter": source.delimiter,
        "header": source.has_header,
        "variables": [v for v in source.variables if v],
    }
    return report


def add_pasted(
    host: Host, mailing_id: str, text: str, *, progress: Progress | None = None
) -> AddReport:
    """Recipients from numbers pasted one per line (or separated by , ; or tabs)."""
    return add_recipients(host, mailing_id, pasted(text), progress=progress)


def _customer_rows(host: Host, wanted: CustomerFilter) -> Iterator[RecipientInput]:
    after, line = "", 0
    while True:
        with host.engine.connect() as conn:
            page = customers_page(conn, wanted, after=after, limit=CHUNK)
        for customer_id, number in page:
            line += 1
            yield RecipientInput(line, number, customer_id=customer_id)
        if len(page) < CHUNK:
            return
        after = page[-1][0]


def add_customers(
    host: Host, mailing_id: str, wanted: CustomerFilter, *, progress: Progress | None = None
) -> AddReport:
    """Every customer matching the filter, at its first number, read a page at a time."""
    return add_recipients(host, mailing_id, _customer_rows(host, wanted), progress=progress)


def set_consent(
    host: Host,
    customer_id: str,
    *,
    given: bool,
    source: str,
    actor: Actor | None = None,
    trail: AuditTrail | None = None,
) -> dict[str, Any]:
    """Record a customer's consent to mailings (or its withdrawal), in the audit trail too."""
    now = host.clock()

    def job(conn: Any) -> None:
        if not customer_exists(conn, customer_id):
            raise CustomerNotFound(customer_id)
        set_consents(conn, [customer_id], given=given, source=source, now=now)
        if trail is not None and actor is not None:
            trail.record(
                conn,
                actor,
                "customer.mailing_consent",
                target_kind="customer",
                target_id=customer_id,
                details={"given": given, "source": source},
            )

    host.writer.run_sync(job)
    return consent(host, customer_id)


def consent(host: Host, customer_id: str) -> dict[str, Any]:
    """A customer's consent: state (given, withdrawn or none), source and when."""
    with host.engine.connect() as conn:
        if not customer_exists(conn, customer_id):
            raise CustomerNotFound(customer_id)
        row = consent_of(conn, customer_id)
    if row is None:
        return {"customer_id": customer_id, "state": "none", "source": None, "changed_at": None}
    return {
        "customer_id": customer_id,
        "state": row.state,
        "source": row.source,
        "changed_at": row.changed_at,
    }
