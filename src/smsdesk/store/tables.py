"""The database schema, as SQLAlchemy tables; Alembic migrations create it.

Times are seconds since the epoch (floats): cheap to compare and sort on SQLite and PostgreSQL
alike, and the outbox compares them on every scan. The connections, routes and spend tables
are declared in `connection_tables.py` and can be imported from here too.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)

from smsdesk.store.cluster_tables import cluster_processes as cluster_processes
from smsdesk.store.connection_tables import connection_health as connection_health
from smsdesk.store.connection_tables import connection_stats as connection_stats
from smsdesk.store.connection_tables import connections as connections
from smsdesk.store.connection_tables import route_connections as route_connections
from smsdesk.store.connection_tables import routes as routes
from smsdesk.store.connection_tables import spend_counters as spend_counters
from smsdesk.store.mailing_tables import customer_tags as customer_tags
from smsdesk.store.mailing_tables import mailing_consents as mailing_consents
from smsdesk.store.mailing_tables import mailing_recipients as mailing_recipients
from smsdesk.store.mailing_tables import mailing_replies as mailing_replies
from smsdesk.store.mailing_tables import mailings as mailings
from smsdesk.store.metadata import metadata as metadata

messages = Table(
    "messages",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("module", String(40), nullable=False),
    Column("recipient", String(20), nullable=False),
    Column("sender", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("encoding", String(4), nullable=False),
    Column("segments", SmallInteger, nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("status", String(12), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("next_attempt_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("scheduled_at", Double),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(64)),
    Column("lease_until", Double),
    Column("provider_message_id", String(100)),
    Column("status_code", String(100)),
    Column("error", Text),
    Column("sent_at", Double),
    Column("final_at", Double),
    Column("reference", String(100)),
    Column("api_key_id", String(26)),
    Column("is_test", Boolean, nullable=False, default=False),
    Column("delivery_report", Boolean, nullable=False, default=True),
    Column("session_key", String(40)),
    Column("request_id", String(26)),
    Column("transactional", Boolean, nullable=False, default=False),
    # The connection it goes to now ("module:<name>" for a module without a connection); the
    # route chosen at accept (its name kept after the route is deleted) and its plan of
    # connection ids (JSON), with the plan's current place.
    Column("connection_id", String(40)),
    Column("route_id", String(26)),
    Column("route_name", String(100)),
    Column("route_plan", Text),
    Column("plan_index", SmallInteger, nullable=False, default=0),
    Column("country", String(2)),  # ISO 3166 alpha-2 of the recipient
    Column("tag", String(64)),
    Column("estimated_cost", Numeric(12, 5)),
    Column("cost_currency", String(3)),
    # attempts on the current connection (`attempts` counts them all) and connections left
    Column("connection_attempts", SmallInteger, nullable=False, default=0),
    Column("failovers", SmallInteger, nullable=False, default=0),
)
# The claim indexes hold only queued messages and the lease index only messages being sent:
# the rest of a message's life (sent, delivered, kept for months) touches none of their
# entries, and a claim reads an index of what waits however many messages are kept. Queries
# name the status as a literal (`IS_QUEUED`, `IS_SENDING`): PostgreSQL's generic plans (a
# statement prepared by the driver after a few runs) cannot use the index for a parameter.
QUEUED_ONLY = text("status = 'queued'")
SENDING_ONLY = text("status = 'sending'")
IS_QUEUED = messages.c.status == literal_column("'queued'")
IS_SENDING = messages.c.status == literal_column("'sending'")
Index(
    "ix_messages_claim",
    messages.c.status,
    messages.c.module,
    messages.c.priority,
    messages.c.id,
    sqlite_where=QUEUED_ONLY,
    postgresql_where=QUEUED_ONLY,
)
Index(
    "ix_messages_claim_conn",
    messages.c.status,
    messages.c.connection_id,
    messages.c.priority,
    messages.c.id,
    sqlite_where=QUEUED_ONLY,
    postgresql_where=QUEUED_ONLY,
)
Index(
    "ix_messages_lease",
    messages.c.status,
    messages.c.lease_until,
    sqlite_where=SENDING_ONLY,
    postgresql_where=SENDING_ONLY,
)
# The SMPP module's sent messages: their reports come over its own session, which the
# dispatcher keeps open while one is still due (`store.reports.connections_awaiting_reports`,
# every few seconds). Only that module's changes into and out of "sent" move an entry, and the
# look-up reads the messages still within their validity, however many are kept.
SESSION_REPORT_MODULES = ("smpp",)
SENT_OVER_SESSION = text("status = 'sent' AND module = 'smpp'")
IS_SENT = messages.c.status == literal_column("'sent'")
Index(
    "ix_messages_session_reports",
    messages.c.status,
    messages.c.expires_at,
    messages.c.connection_id,
    sqlite_where=SENT_OVER_SESSION,
    postgresql_where=SENT_OVER_SESSION,
)
Index("ix_messages_provider_id", messages.c.module, messages.c.provider_message_id)
Index("ix_messages_recipient", messages.c.recipient)
Index("ix_messages_status_id", messages.c.status, messages.c.id)
Index("ix_messages_session_key", messages.c.session_key)
Index("ix_messages_request", messages.c.request_id)

message_events = Table(
    "message_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(26), nullable=False),
    Column("at", Double, nullable=False),
    Column("status", String(12), nullable=False),
    Column("applied", Boolean, nullable=False, default=True),
    Column("source", String(20), nullable=False),
    Column("code", String(100)),
    Column("detail", Text),
    Column("connection_id", String(40)),
)
Index("ix_message_events_message", message_events.c.message_id, message_events.c.id)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("api_key_id", String(26), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("response", Text, nullable=False),
    Column("status_code", SmallInteger, nullable=False),
    Column("created_at", Double, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(50), primary_key=True),
    Column("value", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", Double, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("hash", Text, nullable=False),
    Column("role", String(20), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("revoked_at", Double),
    Column("transactional", Boolean, nullable=False, default=False),
    UniqueConstraint("prefix", name="uq_api_keys_prefix"),
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("module", String(40), nullable=False),
    Column("provider_message_id", String(100), nullable=False),
    Column("sender", String(40), nullable=False),
    Column("recipient", String(40), nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", Double, nullable=False),
    # pending until processed; then request, unrecognised, opt_out, opt_in, invalid or deleted
    Column("state", String(14), nullable=False, default="pending"),
    Column("content", Text),
    Column("session_key", String(40)),
    Column("customer_id", String(26)),
    Column("request_id", String(26)),
    Column("reason", Text),
    Column("processed_at", Double),
    # control characters in the text as received were replaced with U+FFFD
    Column("text_altered", Boolean, nullable=False, default=False),
    Column("connection_id", String(40)),  # the connection that received it
    UniqueConstraint("module", "provider_message_id", name="uq_inbound_provider_id"),
)
Index("ix_inbound_state", inbound_messages.c.state, inbound_messages.c.id)
Index("ix_inbound_sender", inbound_messages.c.sender)

unmatched_reports = Table(
    "unmatched_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("module", String(40), nullable=False),
    Column("provider_message_id", String(100), nullable=False),
    Column("status", String(12), nullable=False),
    Column("code", String(100)),
    Column("received_at", Double, nullable=False),
)
Index(
    "ix_unmatched_provider_id", unmatched_reports.c.module, unmatched_reports.c.provider_message_id
)

customers = Table(
    "customers",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("language", String(10), nullable=False),
    Column("created_from_sms", Boolean, nullable=False, default=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

customer_numbers = Table(
    "customer_numbers",
    metadata,
    Column("number", String(20), primary_key=True),
    Column("customer_id", String(26), nullable=False),
)
Index("ix_customer_numbers_customer", customer_numbers.c.customer_id)

requests = Table(
    "requests",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("status", String(10), nullable=False),
    Column("category", String(100), nullable=False),
    Column("priority", String(20), nullable=False),
    Column("language", String(10), nullable=False),
    Column("customer_id", String(26), nullable=False),
    Column("session_key", String(40), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("last_activity_at", Double, nullable=False),
    Column("owner_id", Integer),  # users.id
    Column("group_id", String(26)),
    Column("started_by", Integer),  # users.id of the agent who started it by SMS
    Column("out_of_hours", Boolean, nullable=False, default=False),
    # the opening-hours period whose out-of-hours answer was sent, so it goes once per period
    Column("out_of_hours_period", String(40)),
    Column("last_customer_message_at", Double),
    UniqueConstraint("session_key", name="uq_requests_session_key"),
)
Index("ix_requests_customer", requests.c.customer_id, requests.c.status)
Index("ix_requests_status_activity", requests.c.status, requests.c.last_activity_at)
Index("ix_requests_owner", requests.c.owner_id, requests.c.status)
Index("ix_requests_group", requests.c.group_id, requests.c.status)

request_messages = Table(
    "request_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(26), nullable=False),
    Column("direction", String(3), nullable=False),  # in or out
    Column("inbound_id", String(26)),
    Column("message_id", String(26)),
    Column("body", Text, nullable=False),
    Column("author", String(100)),
    Column("at", Double, nullable=False),
    Column("assigned_by", String(100)),  # who added it from the unrecognised list
)
Index("ix_request_messages_request", request_messages.c.request_id, request_messages.c.id)

opt_outs = Table(
    "opt_outs",
    metadata,
    Column("number", String(20), primary_key=True),
    Column("keyword", String(40)),
    Column("source", String(20), nullable=False),
    Column("inbound_id", String(26)),
    Column("created_at", Double, nullable=False),
)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),  # encrypted with the installation's key
    Column("events", Text, nullable=False),  # comma-separated event types
    Column("description", String(200), nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", Double, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("subscription_id", String(26), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("event_id", String(26), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(10), nullable=False),  # pending, delivered or dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Double, nullable=False),
    Column("lease_until", Double),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", Double, nullable=False),
    Column("delivered_at", Double),
)
Index(
    "ix_webhook_deliveries_due", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at
)
Index(
    "ix_webhook_deliveries_subscription",
    webhook_deliveries.c.subscription_id,
    webhook_deliveries.c.id,
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("role", String(20), nullable=False),
    Column("language", String(10), nullable=False, default="en"),
    Column("created_at", Double, nullable=False),
    Column("password_changed_at", Double, nullable=False),
    Column("email", String(200)),
    Column("phone", String(20)),
    Column("time_zone", String(60)),
    Column("notify", Text, nullable=False, default="{}"),  # JSON: event -> channels
    Column("last_active_at", Double),
    UniqueConstraint("username", name="uq_users_username"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("last_seen_at", Double, nullable=False),
)
Index("ix_web_sessions_user", web_sessions.c.user_id)

# Append-only: each row's hash is a keyed hash over its fields and the previous row's hash.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Double, nullable=False),
    Column("actor_kind", String(10), nullable=False),  # user, api_key, cli or system
    Column("actor_id", String(40)),
    Column("actor_name", String(100), nullable=False),
    Column("address", String(64)),
    Column("action", String(40), nullable=False),
    Column("target_kind", String(20)),
    Column("target_id", String(64)),
    Column("details", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_log_at", audit_log.c.at)
Index("ix_audit_log_action", audit_log.c.action, audit_log.c.id)

# One row (id 1): the chain's last link, and where retention cut its start.
audit_anchor = Table(
    "audit_anchor",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("last_id", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("purged_through_id", Integer, nullable=False),
    Column("purged_through_hash", String(64), nullable=False),
)

# Opt-outs of erased customers: only a keyed hash of the number, so a STOP is still honoured.
erased_opt_outs = Table(
    "erased_opt_outs",
    metadata,
    Column("number_hash", String(64), primary_key=True),
    Column("keyword", String(40)),
    Column("source", String(20), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("erased_at", Double, nullable=False),
)

# Wrong passwords, shared by every process so the limit holds for the whole installation.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("address", String(64), nullable=False),
    Column("username", String(100), nullable=False),
    Column("at", Double, nullable=False),
)
Index(
    "ix_login_failures_key",
    login_failures.c.username,
    login_failures.c.address,
    login_failures.c.at,
)
Index("ix_login_failures_at", login_failures.c.at)

# Jobs one process of the cluster runs at a time (e.g. retention), held by a lease.
cluster_jobs = Table(
    "cluster_jobs",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("owner", String(64)),
    Column("lease_until", Double),
    Column("last_started_at", Double),
    Column("last_finished_at", Double),
    Column("last_result", Text),
)

# Teams of agents; inbound SMS reach a group through the routing rules.
groups = Table(
    "groups",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("description", String(200), nullable=False, default=""),
    Column("round_robin", Boolean, nullable=False, default=False),
    Column("time_zone", String(60), nullable=False, default="UTC"),
    Column("hours", Text, nullable=False, default="{}"),  # JSON: weekday -> [[from, to], ...]
    Column("holidays", Text, nullable=False, default="[]"),  # JSON: ["2026-12-25", ...]
    Column("out_of_hours_reply", Text, nullable=False, default=""),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("name", name="uq_groups_name"),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", String(26), primary_key=True),
    Column("user_id", Integer, primary_key=True),
    Column("last_assigned_at", Double),  # for round-robin assignment
)
Index("ix_group_members_user", group_members.c.user_id)

routing_rules = Table(
    "routing_rules",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("kind", String(20), nullable=False),  # endpoint_code, keyword or receiving_number
    Column("value", String(100), nullable=False),
    Column("group_id", String(26), nullable=False),
    Column("created_at", Double, nullable=False),
)

reply_templates = Table(
    "reply_templates",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("language", String(10), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("name", "language", name="uq_reply_templates_name_language"),
)

# When each user last looked at a request: customer messages after it are unread.
request_reads = Table(
    "request_reads",
    metadata,
    Column("request_id", String(26), primary_key=True),
    Column("user_id", Integer, primary_key=True),
    Column("seen_at", Double, nullable=False),
)

# Notifications to agents (e-mail or SMS), sent by a background task with retries.
notifications = Table(
    "notifications",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("event", String(40), nullable=False),
    Column("channel", String(10), nullable=False),  # email or sms
    Column("request_id", String(26)),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(10), nullable=False),  # pending, sent or dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Double, nullable=False),
    Column("lease_until", Double),
    Column("last_error", Text),
    Column("created_at", Double, nullable=False),
    Column("sent_at", Double),
)
Index("ix_notifications_due", notifications.c.status, notifications.c.next_attempt_at)

# Changes the screens show live, shared by every process; kept for minutes only.
live_events = Table(
    "live_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Double, nullable=False),
    Column("topic", String(40), nullable=False),
    Column("key", String(64)),
    Column("payload", Text, nullable=False),
)
Index("ix_live_events_at", live_events.c.at)
