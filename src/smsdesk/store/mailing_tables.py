"""The tables of mailings, their recipients and customers' consent to mailings (part of the
schema that `tables.py` declares).

A recipient row is kept for every line given, valid or not, so the per-row report and the
blocked counts survive; `message_id` is set once its SMS is queued, and `status` mirrors the
message's status so the statistics outlive the purge of old messages.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Double, Index, Integer, SmallInteger, String, Table, Text

from smsdesk.store.metadata import metadata

mailings = Table(
    "mailings",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("status", String(12), nullable=False),
    Column("text", Text),
    Column("template_id", String(26)),
    Column("sender", String(16)),
    Column("connection", String(100)),  # a connection's id or name; None: the routes decide
    Column("priority", SmallInteger, nullable=False),
    Column("validity_hours", Double),
    Column("send_window", Text),  # JSON {"days": [...], "from": "09:00", "to": "20:00"}
    Column("throttle_per_minute", Integer),
    Column("tags", Text, nullable=False),  # JSON list
    Column("replies", String(16), nullable=False),
    Column("override_consent", Boolean, nullable=False, default=False),
    Column("scheduled_at", Double),
    Column("created_by", String(100)),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("started_at", Double),
    Column("finished_at", Double),
)
Index("ix_mailings_status", mailings.c.status, mailings.c.created_at)

mailing_recipients = Table(
    "mailing_recipients",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mailing_id", String(26), nullable=False),
    Column("line", Integer, nullable=False),
    Column("given", String(100), nullable=False),  # the number as written
    Column("number", String(20)),  # E.164; None when invalid
    Column("customer_id", String(26)),
    Column("variables", Text),  # JSON object of the row's own values
    Column("check_result", String(12), nullable=False),
    Column("reason", Text),
    Column("time_zone", String(64)),
    Column("message_id", String(26)),
    Column("status", String(12)),  # the message's status, mirrored
    Column("not_before", Double),  # held by the send window until then
    Column("queued_at", Double),
    # the estimate made when the row was checked: segments and cost of its SMS, or the reason
    # the outbox would refuse it; None until estimated (again, after the text changed)
    Column("segments", SmallInteger),
    Column("cost", Double),
    Column("currency", String(3)),
    Column("refusal", Text),
    # the provider's code and the time of the status mirrored from the message
    Column("status_code", String(64)),
    Column("status_at", Double),
)
Index(
    "ix_mailing_recipients_pending",
    mailing_recipients.c.mailing_id,
    mailing_recipients.c.check_result,
    mailing_recipients.c.message_id,
    mailing_recipients.c.id,
)
Index("ix_mailing_recipients_number", mailing_recipients.c.mailing_id, mailing_recipients.c.number)
Index("ix_mailing_recipients_message", mailing_recipients.c.message_id)

# A reply from a recipient of a mailing: the inbound SMS, the request it became (None when it
# went to the unrecognised list), and whether it was a STOP.
mailing_replies = Table(
    "mailing_replies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mailing_id", String(26), nullable=False),
    Column("recipient_id", Integer, nullable=False),
    Column("inbound_id", String(26), nullable=False),
    Column("request_id", String(26)),
    Column("opt_out", Boolean, nullable=False),
    Column("received_at", Double, nullable=False),
)
Index("ix_mailing_replies_mailing", mailing_replies.c.mailing_id, mailing_replies.c.received_at)
Index("ix_mailing_replies_request", mailing_replies.c.request_id)
Index("ix_mailing_replies_inbound", mailing_replies.c.inbound_id, unique=True)

# A customer's consent to mailings: one row per customer that gave or withdrew it; no row is
# no consent. `source` says where it came from: api, screen, import, sms (a STOP reply).
mailing_consents = Table(
    "mailing_consents",
    metadata,
    Column("customer_id", String(26), primary_key=True),
    Column("state", String(10), nullable=False),  # given or withdrawn
    Column("source", String(40), nullable=False),
    Column("changed_at", Double, nullable=False),
)

# A customer's tags, e.g. "vip" or "outage-2026-12": to choose a mailing's audience by.
customer_tags = Table(
    "customer_tags",
    metadata,
    Column("customer_id", String(26), primary_key=True),
    Column("tag", String(50), primary_key=True),
)
Index("ix_customer_tags_tag", customer_tags.c.tag, customer_tags.c.customer_id)
