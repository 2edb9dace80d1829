"""Sending mailings: each pass queues the next batch of every sending mailing's recipients as
ordinary outbox messages, which the dispatcher then sends by its own rules (priority, routes,
limits). A mailing never goes around the outbox.

Per pass and mailing, the messages are rendered and prepared first on a connection of their
own (the costly part), then stored in one writer job with the mailing's row locked, keeping
only recipients still pending and within the throttle as it is then:

- a scheduled mailing whose time has come starts;
- recipients whose send window is closed (in their own time zone) are held until it opens
  (`not_before`), never dropped and never sent early;
- the throttle allows at most N messages queued per rolling minute, each given its own slot
  (`next_attempt_at` 60/N seconds apart), so they leave evenly rather than in a burst;
- without a throttle, at most a batch of the mailing's messages waits in the outbox at any
  time, so a pause stops the mailing within a batch's sending time;
- each message is prepared by `outbox.accept.prepare_message` (the API's own checks and
  routing); a number that opted out since the check, a customer who withdrew consent since
  then (unless consent is overridden), or a message the outbox refuses, is marked on its
  recipient row with the reason instead of being queued;
- a mailing is done once every valid recipient was queued (or refused) and none of its
  messages is still queued or being sent (one sent and awaiting its report counts as
  finished); its messages' statuses are mirrored onto the recipients first, and for two days
  after it ended each minute, so late delivery reports still reach its statistics.

Every status change (scheduled, started, paused, resumed, done, cancelled) emits the
`mailing.status` webhook event in its own transaction (`mailings.status_events`).

Pausing a mailing takes back its messages still queued in the outbox (cancelled there; their
recipients wait again), so a pause takes effect at once; cancelling cancels them for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from smsdesk.domain.errors import DomainError
from smsdesk.domain.mailing_window import next_window_opening
from smsdesk.domain.mailings import Action, Mailing, Status, render
from smsdesk.domain.message import Status as MessageStatus
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.events import EventSink
from smsdesk.host import SendingHost
from smsdesk.mailings import get_mailing
from smsdesk.mailings.prepare import mailing_text, new_message, values_for
from smsdesk.mailings.status_events import change
from smsdesk.outbox.accept import opted_out_refusals, prepare_message
from smsdesk.scan_loop import ScanLoop, cancel_and_wait
from smsdesk.store import mailing_sending as sending
from smsdesk.store import mailings as store
from smsdesk.store.mailing_consents import consents_of
from smsdesk.store.mailing_stats import mirror_messages
from smsdesk.store.messages import change_status as change_message_status
from smsdesk.store.messages import insert_messages
from smsdesk.store.spend import SpendRefused

log = logging.getLogger(__name__)

BATCH = 200
WAITING_BATCHES = 4  # batches of one mailing that may wait in the outbox at once
MINUTE = 60.0
MIRROR_PAGE = 2000  # message statuses mirrored per writer job
MIRROR_EVERY = 60.0  # seconds between mirrorings of mailings that ended lately
MIRROR_DAYS = 2  # how long after a mailing ended its late reports are mirrored


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass over a mailing did."""

    queued: int = 0
    held: int = 0
    refused: int = 0
    finished: bool = False


def _budget(conn: Connection, mailing: Mailing, now: float, batch: int) -> int:
    """How many messages the mailing may queue now."""
    throttle = mailing.spec.throttle_per_minute
    if throttle is None:
        # Several batches may wait, so the dispatcher does not run dry between two polls;
        # they wait at the mailing's priority, behind every service SMS.
        waiting = sending.waiting_in_outbox(conn, mailing.id)
        return max(0, min(batch, WAITING_BATCHES * batch - waiting))
    return max(0, min(batch, throttle - sending.queued_since(conn, mailing.id, now - MINUTE)))


@dataclass
class Planned:
    """What a pass means to do, prepared before its writer job: (recipient id, message row)
    to queue, recipients to hold (id -> until) and recipients refused (id -> status, reason)."""

    queue: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    held: dict[int, float] = field(default_factory=dict)
    refused: dict[int, tuple[str, str]] = field(default_factory=dict)
    customers: dict[int, str] = field(default_factory=dict)  # recipient id -> customer id
    finishing: bool = False  # nothing left to queue and nothing in the outbox when planned

    def keep(self, pending: set[int]) -> None:
        """Forget recipients another pass took meanwhile."""
        self.queue = [pair for pair in self.queue if pair[0] in pending]
        self.held = {k: v for k, v in self.held.items() if k in pending}
        self.refused = {k: v for k, v in self.refused.items() if k in pending}
        self.customers = {k: v for k, v in self.customers.items() if k in pending}


def plan_batch(
    conn: Connection, mailing: Mailing, config: SmsConfiguration, now: float, batch: int
) -> Planned:
    """Render and prepare the next recipients' messages (the costly part, kept out of the
    writer): the window holds some, the outbox's checks refuse some."""
    planned = Planned()
    if sending.remaining(conn, mailing.id) == 0:
        planned.finishing = sending.unfinished_messages(conn, mailing.id) == 0
        return planned
    budget = _budget(conn, mailing, now, batch)
    if budget == 0:
        return planned
    text = mailing_text(conn, mailing)
    window = mailing.spec.window
    openings: dict[str, float] = {}
    throttle = mailing.spec.throttle_per_minute
    first_slot = now
    if throttle:
        first_slot += sending.queued_since(conn, mailing.id, now - MINUTE) * MINUTE / throttle
    for row in sending.due_recipients(conn, mailing.id, now, budget):
        if window is not None:
            zone = row.time_zone or "UTC"
            if zone not in openings:
                openings[zone] = next_window_opening(now, window, zone)
            if openings[zone] > now:
                planned.held[row.id] = openings[zone]
                continue
        try:
            body = render(text, values_for(row.number, row.customer_name, row.variables))
            message = prepare_message(new_message(mailing, row.number, body), config, now)
        except DomainError as exc:
            planned.refused[row.id] = ("refused", exc.message)
            continue
        if throttle:
            slot = first_slot + len(planned.queue) * MINUTE / throttle
            message["next_attempt_at"] = max(message["next_attempt_at"], slot)
        planned.queue.append((row.id, message))
        if row.customer_id and not mailing.spec.override_consent:
            planned.customers[row.id] = row.customer_id
    return planned


def _without_consent(conn: Connection, planned: Planned) -> dict[int, tuple[str, str]]:
    """Recipients whose customer withdrew consent since the check."""
    given = consents_of(conn, planned.customers.values())
    return {
        rid: ("no_consent", "The customer withdrew consent to mailings.")
        for rid, customer_id in planned.customers.items()
        if not given.get(customer_id, False)
    }


def commit_batch(
    conn: Connection,
    mailing_id: str,
    planned: Planned,
    now: float,
    batch: int = BATCH,
    events: EventSink | None = None,
) -> Pass:
    """Store what `plan_batch` prepared, with the mailing locked: only recipients still
    pending, within the budget as it is now, and none that opted out meanwhile. The mailing
    is done when the plan found its outbox empty and no recipient is pending still."""
    mailing = store.lock_mailing(conn, mailing_id)
    if mailing.status is Status.SCHEDULED:
        change(conn, mailing_id, Action.START, now, events)
    elif mailing.status is not Status.SENDING:
        return Pass()
    ids = [rid for rid, _ in planned.queue] + [*planned.held, *planned.refused]
    planned.keep(sending.still_pending(conn, mailing_id, ids))
    refused = {**planned.refused, **_without_consent(conn, planned)}
    queue = [pair for pair in planned.queue if pair[0] not in refused]
    queue = queue[: _budget(conn, mailing, now, batch)]
    stopped = opted_out_refusals(conn, [message for _, message in queue])
    for index, refusal in stopped.items():
        refused[queue[index][0]] = ("opted_out", refusal.message)
    queue = [pair for index, pair in enumerate(queue) if index not in stopped]
    insert_messages(conn, [message for _, message in queue], "mailing")
    sending.mark_queued(conn, [(rid, message["id"]) for rid, message in queue], now)
    sending.hold(conn, planned.held)
    sending.mark_refused(conn, refused)
    finished = planned.finishing and not queue and sending.remaining(conn, mailing_id) == 0
    if finished:
        change(conn, mailing_id, Action.FINISH, now, events)
    return Pass(len(queue), len(planned.held), len(refused), finished)


def _cancel_queued(
    conn: Connection, mailing_id: str, now: float, detail: str, events: EventSink | None
) -> list[str]:
    """Cancel the mailing's messages still queued in the outbox; the ids cancelled (a message
    a dispatcher took meanwhile is left to be sent)."""
    return [
        message_id
        for message_id in sending.queued_message_ids(conn, mailing_id)
        if change_message_status(
            conn, message_id, MessageStatus.QUEUED, MessageStatus.CANCELLED, now, detail, events
        )
    ]


def change_status(
    host: SendingHost, mailing_id: str, action: Action, events: EventSink | None = None
) -> Mailing:
    """Schedule, unschedule, start or resume (pause and cancel have their own functions);
    refused with the statuses that allow the step."""
    now = host.clock()
    host.writer.run_sync(lambda conn: change(conn, mailing_id, action, now, events))
    return get_mailing(host, mailing_id)


def cancel(host: SendingHost, mailing_id: str, events: EventSink | None = None) -> Mailing:
    """Cancel a mailing and every message of it still queued in the outbox."""
    now = host.clock()

    def job(conn: Connection) -> None:
        change(conn, mailing_id, Action.CANCEL, now, events)
        cancelled = _cancel_queued(
            conn, mailing_id, now, f"cancelled with mailing {mailing_id}", events
        )
        mirror_messages(conn, cancelled)

    host.writer.run_sync(job)
    return get_mailing(host, mailing_id)


def pause(host: SendingHost, mailing_id: str, events: EventSink | None = None) -> Mailing:
    """Pause a mailing at once: its messages still queued in the outbox are cancelled and
    their recipients wait again, to be queued anew when the mailing resumes."""
    now = host.clock()

    def job(conn: Connection) -> None:
        change(conn, mailing_id, Action.PAUSE, now, events)
        taken_back = _cancel_queued(conn, mailing_id, now, f"mailing {mailing_id} paused", events)
        sending.unlink(conn, taken_back)

    host.writer.run_sync(job)
    return get_mailing(host, mailing_id)


class MailingSender(ScanLoop):
    """One process's mailing loop (`start`/`stop`), or single passes (`step`) for tests and
    commands. Several processes may run it against one database: each pass locks the mailing."""

    scan_failed = "mailing pass failed; trying again"
    scan_log = log

    def __init__(
        self,
        host: SendingHost,
        *,
        batch: int = BATCH,
        poll_interval: float = 1.0,
        events: EventSink | None = None,
    ) -> None:
        self.host = host
        # the process's event sink (the service has one) unless another is given
        self.events: EventSink | None = events or getattr(host, "events", None)
        self.batch = batch
        self._mirrored_at: float | None = None
        self.poll_interval = poll_interval
        self.passes = 0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._stopping = False

    def step(self) -> dict[str, Pass]:
        """One pass over every sending (or due scheduled) mailing; what each pass did."""
        now = self.host.clock()
        config = self.host.settings.load()
        with self.host.engine.connect() as conn:
            sending_ids, due = sending.mailings_to_send(conn, now)
        done: dict[str, Pass] = {}
        for mailing_id in [*due, *sending_ids]:
            with self.host.engine.connect() as conn:
                mailing = store.get_mailing(conn, mailing_id)
                if mailing is None:
                    continue
                planned = plan_batch(conn, mailing, config, now, self.batch)
            if planned.finishing:
                self.mirror(mailing_id)
            try:
                done[mailing_id] = self.host.writer.run_sync(
                    lambda conn, mid=mailing_id, p=planned: commit_batch(  # type: ignore[misc]
                        conn, mid, p, now, self.batch, self.events
                    )
                )
            except SpendRefused as exc:
                log.warning(
                    "mailing %s paused: the spend controls refused it (%s)", mailing_id, exc
                )
                self._pause(mailing_id, now)
        self._mirror_ended(now)
        self.passes += 1
        if any(p.queued for p in done.values()):
            self.host.wake_dispatcher()
        return done

    def mirror(self, mailing_id: str) -> int:
        """Copy the statuses of the mailing's messages that changed onto its recipients, a
        page per writer job (read outside it); how many were copied."""
        mirrored, after = 0, ""
        while True:
            with self.host.engine.connect() as conn:
                ids = sending.unmirrored_message_ids(conn, mailing_id, after=after)
            if not ids:
                return mirrored
            self.host.writer.run_sync(lambda conn, ids=ids: mirror_messages(conn, ids))  # type: ignore[misc]
            mirrored += len(ids)
            after = ids[-1]

    def _mirror_ended(self, now: float) -> None:
        """Once a minute, mirror the late reports of mailings that ended in the last days."""
        if self._mirrored_at is not None and now - self._mirrored_at < MIRROR_EVERY:
            return
        self._mirrored_at = now
        with self.host.engine.connect() as conn:
            ended = sending.finished_since(conn, now - MIRROR_DAYS * 86400)
        for mailing_id in ended:
            self.mirror(mailing_id)

    def _pause(self, mailing_id: str, now: float) -> None:
        with contextlib.suppress(DomainError):  # paused or cancelled meanwhile
            self.host.writer.run_sync(
                lambda conn: change(conn, mailing_id, Action.PAUSE, now, self.events)
            )

    async def run_once(self) -> int:
        done = await asyncio.to_thread(self.step)
        return sum(p.queued for p in done.values())

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._main = asyncio.create_task(self._scan_forever(), name="mailing-sender")

    async def stop(self) -> None:
        """Stop at once: a pass in its writer job commits whole or not at all."""
        self._stopping = True
        if self._main is not None:
            await cancel_and_wait(self._main)
            self._main = None
