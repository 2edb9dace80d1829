"""Webhook retries are the leader's: every deliverer sends fresh deliveries at once, but only the
one whose process leads `webhook-retries` takes deliveries that were tried before."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.engine import Engine

from smsdesk.cluster import JobGate
from smsdesk.crypto import SecretBox
from smsdesk.store import db
from smsdesk.store.tables import webhook_deliveries
from smsdesk.store.webhooks import record_attempt
from smsdesk.store.writer import Writer
from smsdesk.webhooks_out.deliverer import WebhookDeliverer
from smsdesk.webhooks_out.subscriptions import WebhookStore


def tried_and_fresh(engine: Engine, box: SecretBox) -> tuple[str, str, float]:
    """A delivery that failed once and is due again, one never tried, and a time both are due."""
    store = WebhookStore(engine, box, time.time)
    sub, _ = store.create("https://crm.example.com/h", ["message.status"])
    tried, fresh = store.ping(sub.id).id, store.ping(sub.id).id
    now = time.time() + 1
    with db.write_transaction(engine) as conn, conn.begin():
        record_attempt(conn, tried, now=now, status_code=500, error="HTTP 500", next_attempt_at=now)
    return tried, fresh, now + 1


def leased(engine: Engine) -> set[str]:
    query = sa.select(webhook_deliveries.c.id).where(webhook_deliveries.c.lease_until.is_not(None))
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


@pytest.mark.parametrize("leads", [False, True])
async def test_only_the_leader_takes_retries(engine: Engine, leads: bool) -> None:
    """A deliverer whose process does not lead takes the fresh delivery only; the leader's
    takes the retry too (both lease what they take, so none goes out twice)."""
    box = SecretBox(Fernet.generate_key())
    tried, fresh, now = tried_and_fresh(engine, box)
    writer = Writer(engine)
    writer.start()
    deliverer = WebhookDeliverer(
        writer=writer,
        box=box,
        clock=lambda: now,
        gate=JobGate("webhook-retries", "p", lambda: leads),
    )
    try:
        claimed = await deliverer.run_once()  # one scan, by hand (the loop is not started)
        tasks = list(deliverer._tasks)
        for task in tasks:
            task.cancel()  # before it posts: what was claimed stays leased
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        writer.stop()
    assert leased(engine) == ({tried, fresh} if leads else {fresh})
    assert claimed == (2 if leads else 1)
    assert deliverer.gate.runs == (1 if leads else 0)  # the journal: scans that took a retry
