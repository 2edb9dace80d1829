"""How fast every list page and the dashboard answer with 100,000 messages stored.

For each database a fresh `smsdesk serve` (no dispatcher, so nothing changes while it is
measured) gets, bulk-inserted straight into its database:

  messages   100,000 over 20 days, five modules, every status (most delivered, some queued,
             failed, expired, …), two or three timeline entries each;
  requests   10,000 with customers and numbers, over 40 agents and 8 groups, a quarter
             unassigned, open, pending and closed, with conversations (inbound and outbound
             SMS, the outbound ones linked to their messages) and read marks;
  inbound    the customers' SMS of those conversations, unrecognised SMS, STOPs and STARTs;
  opt-outs   3,000;  audit  10,000 entries in one hash chain.

Then, over HTTP (a session cookie for the pages, an API key for the API), each page below is
asked once per round, the pages interleaved, for `--rounds` rounds after a warm-up round; the
median and the 95th percentile are printed per database with PASS or FAIL against the target
(median under 100 ms), and the server process's mean CPU time per request (`cpu/req`; on
PostgreSQL the database's own CPU is not in it). `uptime`'s load is printed before and after:
the wall times are only as quiet as the machine.

    python bench/list_pages.py                                  # SQLite and PostgreSQL
    python bench/list_pages.py --database sqlite --rounds 5     # quicker
    python bench/list_pages.py --messages 10000 --requests 1000 --only outbox
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from _server import Server, running_server

from smsdesk.domain.audit import Actor
from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store import audit
from smsdesk.store.retention import id_before

DAY = 86_400.0
TARGET_MS = 100.0
PASSWORD = "correct horse battery staple"
AGENTS = 40
GROUPS = 8
MODULES = ("simulator", "twilio", "linkmobility", "cm", "pswincom")
MODULE_WEIGHTS = (10, 40, 25, 15, 10)
# Final statuses dominate, as in a service that has run for a while.
STATUSES = ("delivered", "sent", "undelivered", "failed", "expired", "cancelled", "queued")
STATUS_WEIGHTS = (72, 6, 4, 4, 2, 2, 10)
INBOUND_STATES = ("unrecognised", "opt_out", "opt_in", "invalid", "deleted")
INBOUND_WEIGHTS = (50, 25, 5, 5, 15)
AUDIT_ACTIONS = (
    "login.succeeded",
    "login.failed",
    "request.assigned",
    "configuration.changed",
    "apikey.created",
    "optout.added",
    "inbound.bulk_deleted",
    "user.created",
)
MESSAGE_COLUMNS = (
    "id, module, recipient, sender, body, encoding, segments, priority, status, created_at, "
    "updated_at, next_attempt_at, expires_at, attempts, sent_at, final_at, is_test, "
    "delivery_report, transactional, request_id, provider_message_id, scheduled_at"
)


@dataclass
class Sizes:
    messages: int
    requests: int
    days: int = 20


@dataclass
class Rows:
    """Every row to insert, per table: column names and tuples."""

    tables: dict[str, tuple[str, list[tuple[Any, ...]]]] = field(default_factory=dict)

    def add(self, table: str, columns: str, row: tuple[Any, ...]) -> None:
        self.tables.setdefault(table, (columns, []))[1].append(row)


def ulid_at(at: float, n: int) -> str:
    """A time-ordered id made at `at`, unique by `n`, as the service makes them."""
    return id_before(at)[:10] + f"{n:016d}"


def message_row(
    rng: random.Random, n: int, at: float, recipient: str, request_id: str | None
) -> tuple[Any, ...]:
    status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
    sent = at + rng.random() * 5 if status in ("delivered", "sent", "undelivered") else None
    final = (sent or at) + rng.random() * 30 if status not in ("sent", "queued") else None
    scheduled = at + DAY * 30 if status == "queued" and rng.random() < 0.3 else None
    text = f"Hello, your appointment {n} is confirmed. Reply to this SMS with questions."
    return (
        ulid_at(at, n), rng.choices(MODULES, MODULE_WEIGHTS)[0], recipient, "smsdesk", text,
        "GSM7", 1, rng.choice((1, 2, 2, 3)), status, at, final or sent or at,
        scheduled or at + 30, at + 2 * DAY, 0 if status == "queued" else 1, sent, final, False,
        True, rng.random() < 0.2, request_id, f"p{n}" if sent else None, scheduled,
    )  # fmt: skip


def timeline_rows(message: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    mid, status, at, sent, final = message[0], message[8], message[9], message[14], message[15]
    yield (mid, at, "queued", True, "api")
    if sent is not None:
        yield (mid, sent, "sent", True, message[1])
    if final is not None:
        yield (mid, final, status, True, message[1] if sent else "dispatcher")


def make_rows(sizes: Sizes, users: list[int], group_ids: list[str], now: float) -> Rows:
    """Requests with conversations, customers, messages, timelines, inbound SMS, opt-outs."""
    rng = random.Random(13)
    out = Rows()
    start = now - sizes.days * DAY
    counter = iter(range(10**9))
    numbers = [f"+316{n:08d}" for n in range(sizes.requests)]
    for n, number in enumerate(numbers):
        customer = ulid_at(start, next(counter))
        out.add("customers", "id, name, language, created_from_sms, created_at, updated_at",
                (customer, f"Customer {n}", "en", True, start, start))  # fmt: skip
        out.add("customer_numbers", "number, customer_id", (number, customer))
        _request(out, rng, counter, (customer, number, n), users, group_ids, (start, now))
    conversation_messages = len(out.tables.get("messages", ("", []))[1])
    for _ in range(max(0, sizes.messages - conversation_messages)):
        at = start + rng.random() * (now - start)
        number = rng.choice(numbers) if rng.random() < 0.4 else f"+3162{rng.randrange(10**7):07d}"
        out.add("messages", MESSAGE_COLUMNS, message_row(rng, next(counter), at, number, None))
    for row in out.tables["messages"][1]:
        for event in timeline_rows(row):
            out.add("message_events", "message_id, at, status, applied, source", event)
    _loose_inbound(out, rng, counter, numbers, (start, now), sizes.requests)
    return out


def _request(
    out: Rows,
    rng: random.Random,
    counter: Iterator[int],
    who: tuple[str, str, int],
    users: Sequence[int],
    group_ids: Sequence[str],
    period: tuple[float, float],
) -> None:
    customer, number, n = who
    start, now = period
    at = start + rng.random() * (now - start - 3600)
    owner = rng.choice(users) if rng.random() > 0.25 else None
    request_id = ulid_at(at, next(counter))
    entries = rng.randint(1, 12)
    last = at
    for k in range(entries):
        last = at + k * rng.random() * 600
        if k % 2 == 0:
            inbound_id = ulid_at(last, next(counter))
            out.add("inbound_messages",
                    "id, module, provider_message_id, sender, recipient, body, received_at, "
                    "state, content, customer_id, request_id, processed_at",
                    (inbound_id, "twilio", f"in{inbound_id}", number, "+3197010000000",
                     f"Question {n}.{k}: when is my appointment?", last, "request",
                     f"Question {n}.{k}: when is my appointment?", customer, request_id,
                     last + 1))  # fmt: skip
            out.add(
                "request_messages",
                "request_id, direction, inbound_id, message_id, body, author, at",
                (request_id, "in", inbound_id, None, "Question", None, last),
            )
        else:
            row = message_row(rng, next(counter), last, number, request_id)
            out.add("messages", MESSAGE_COLUMNS, row)
            out.add(
                "request_messages",
                "request_id, direction, inbound_id, message_id, body, author, at",
                (request_id, "out", None, row[0], row[4], "agent", last),
            )
    status = rng.choice(("open", "open", "pending", "closed", "closed"))
    group = rng.choice(group_ids) if rng.random() > 0.1 else None
    out.add("requests",
            "id, title, status, category, priority, language, customer_id, session_key, "
            "created_at, updated_at, last_activity_at, owner_id, group_id, out_of_hours, "
            "last_customer_message_at",
            (request_id, f"Question {n}", status, "SMS", "normal", "en", customer,
             f"s{request_id}", at, last, last, owner, group, False, at))  # fmt: skip
    if owner is not None and rng.random() > 0.5:
        out.add("request_reads", "request_id, user_id, seen_at", (request_id, owner, at))


def _loose_inbound(
    out: Rows,
    rng: random.Random,
    counter: Iterator[int],
    numbers: Sequence[str],
    period: tuple[float, float],
    count: int,
) -> None:
    """SMS that joined no request: unrecognised, STOP and START, invalid, deleted."""
    start, now = period
    opted: set[str] = set()
    for n in range(count):
        at = start + rng.random() * (now - start)
        state = rng.choices(INBOUND_STATES, INBOUND_WEIGHTS)[0]
        sender = rng.choice(numbers) if rng.random() < 0.3 else f"+3165{rng.randrange(10**7):07d}"
        body = {"opt_out": "STOP", "opt_in": "START"}.get(state, f"Unknown text {n}")
        inbound_id = ulid_at(at, next(counter))
        out.add("inbound_messages",
                "id, module, provider_message_id, sender, recipient, body, received_at, "
                "state, content, customer_id, request_id, processed_at",
                (inbound_id, "cm", f"in{inbound_id}", sender, "+3197010000001", body, at, state,
                 body, None, None, at + 1))  # fmt: skip
        if state == "opt_out" and sender not in opted:
            opted.add(sender)
            out.add("opt_outs", "number, keyword, source, inbound_id, created_at",
                    (sender, "STOP", "sms", inbound_id, at))  # fmt: skip


def insert_all(engine: sa.Engine, rows: Rows) -> None:
    with engine.begin() as conn:
        raw: Any = conn.connection.dbapi_connection
        postgres = engine.dialect.name == "postgresql"
        for table, (columns, values) in rows.tables.items():
            if postgres:
                with raw.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for value in values:
                        copy.write_row(value)
            else:
                marks = ", ".join("?" * len(values[0]))
                raw.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)


def fill(server: Server, sizes: Sizes, audit_entries: int) -> tuple[str, str]:
    """Fill the server's database; the login name and a request id with a conversation."""
    url = server.database_url if not server.database_url.startswith("sqlite") else ""
    service = Service(AppConfig(data_dir=server.data_dir, database_url=url))
    try:
        service.upgrade()
        now = time.time()
        users = [service.users.create("bench", PASSWORD, "admin", "en", now).id]
        users += [
            service.users.create(f"agent{n}", PASSWORD, "agent", "en", now).id
            for n in range(1, AGENTS)
        ]
        group_ids = [ulid_at(now, n) for n in range(GROUPS)]
        extra = Rows()
        for n, group in enumerate(group_ids):
            extra.add(
                "groups",
                "id, name, description, round_robin, time_zone, hours, holidays, "
                "out_of_hours_reply, created_at, updated_at",
                (group, f"Group {n}", "", False, "UTC", "{}", "[]", "", now, now),
            )
        for n, user in enumerate(users):
            extra.add("group_members", "group_id, user_id", (group_ids[n % GROUPS], user))
            if n < 3:  # the logged-in admin and two agents are in a second group
                extra.add("group_members", "group_id, user_id", (group_ids[n + 1], user))
        insert_all(service.engine, extra)
        rows = make_rows(sizes, users, group_ids, now)
        insert_all(service.engine, rows)
        _audit(service, audit_entries, now - sizes.days * DAY, now)
        settle(service.engine)
        lengths: dict[str, int] = {}
        for entry in rows.tables["request_messages"][1]:
            lengths[entry[0]] = lengths.get(entry[0], 0) + 1
        mine = [r[0] for r in rows.tables["requests"][1] if r[11] == users[0]]
        conversation = max(mine, key=lambda request_id: lengths.get(request_id, 0))
        return "bench", conversation
    finally:
        service.close()


def _audit(service: Service, count: int, start: float, now: float) -> None:
    rng = random.Random(17)
    key = service.hash_key
    step = (now - start) / max(count, 1)
    with service.engine.begin() as conn:
        for n in range(count):
            actor = Actor(kind="user", name=f"agent{n % AGENTS}", id=str(n % AGENTS + 1))
            action = rng.choice(AUDIT_ACTIONS)
            audit.append(conn, key, actor, action, start + n * step, target_kind="request",
                         target_id=f"R{n}", details={"n": n})  # fmt: skip


def settle(engine: sa.Engine) -> None:
    """Fresh statistics on PostgreSQL (autovacuum would have them); a checkpoint on SQLite."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
            conn.execute(sa.text("CHECKPOINT"))
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def pages(request_id: str) -> list[tuple[str, str]]:
    """(label, path) of every page measured; paths under /api/ are asked with the API key."""
    view = "/requests?view="
    return [
        ("requests: mine", view + "mine"),
        ("requests: unassigned", view + "unassigned"),
        ("requests: my groups", view + "my_groups"),
        ("requests: waiting", view + "waiting"),
        ("requests: all (open)", "/requests"),
        ("requests: all, any status", view + "all&status=all"),
        ("requests: all, closed", view + "all&status=closed"),
        ("requests: mine, search", view + "mine&status=all&q=Question+12"),
        ("requests: all, search number", view + "all&status=all&q=%2B31600001234"),
        ("request: conversation", f"/requests/{request_id}"),
        ("outbox", "/outbox"),
        ("outbox: status failed", "/outbox?status=failed"),
        ("outbox: status queued", "/outbox?status=queued"),
        ("outbox: module cm", "/outbox?module=cm"),
        ("outbox: number", "/outbox?number=%2B31600001234"),
        ("inbox: unrecognised", "/inbox/unrecognised"),
        ("opt-outs", "/opt-outs"),
        ("opt-outs: search", "/opt-outs?q=0012"),
        ("audit", "/audit"),
        ("audit: action", "/audit?action=configuration.changed"),
        ("dashboard", "/dashboard"),
        ("API requests: mine", "/api/v1/requests?view=mine&user=bench"),
        ("API requests: waiting", "/api/v1/requests?view=waiting&user=bench"),
        ("API requests: all", "/api/v1/requests?view=all&user=bench"),
        ("API requests: open", "/api/v1/requests?status=open"),
        ("API request", f"/api/v1/requests/{request_id}"),
        ("API messages", "/api/v1/messages"),
        ("API messages: failed", "/api/v1/messages?status=failed"),
        ("API messages: to", "/api/v1/messages?to=%2B31600001234"),
        ("API inbound", "/api/v1/inbound"),
        ("API opt-outs", "/api/v1/opt-outs"),
        ("API audit", "/api/v1/audit"),
    ]


def log_in(client: httpx.Client, username: str) -> None:
    form = client.get("/login").text
    token = form.split('name="csrf_token" value="')[1].split('"')[0]
    done = client.post(
        "/login", data={"csrf_token": token, "username": username, "password": PASSWORD}
    )
    if done.status_code not in (200, 303) or not client.cookies:
        raise RuntimeError(f"login failed: {done.status_code} {done.text[:300]}")


def measure(
    server: Server, username: str, chosen: Sequence[tuple[str, str]], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall times per page (ms) and the server process's CPU time per request (ms; clock
    ticks, so meaningful as a mean over the rounds), which the machine's load barely moves."""
    times: dict[str, list[float]] = {label: [] for label, _ in chosen}
    cpu: dict[str, list[float]] = {label: [] for label, _ in chosen}
    api_headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.base_urls[0], timeout=120) as client:
        log_in(client, username)
        for round_number in range(rounds + 1):  # the first round warms caches and is dropped
            for label, path in chosen:
                headers = api_headers if path.startswith("/api/") else {}
                cpu_before = server.cpu_seconds()
                started = time.perf_counter()
                answer = client.get(path, headers=headers)
                took = (time.perf_counter() - started) * 1000
                cpu_used = (server.cpu_seconds() - cpu_before) * 1000
                if answer.status_code != 200:
                    raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:300]}")
                if round_number:
                    times[label].append(took)
                    cpu[label].append(cpu_used)
    return times, cpu


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def table(
    name: str, times: dict[str, list[float]], cpu: dict[str, list[float]], paths: dict[str, str]
) -> str:
    lines = [
        f"{'page (' + name + ')':34} {'median':>8} {'p95':>8} {'cpu/req':>8}  verdict  path",
        "-" * 110,
    ]
    for label, values in times.items():
        median = statistics.median(values)
        verdict = "PASS" if median < TARGET_MS else "FAIL"
        lines.append(
            f"{label:34} {median:8.1f} {percentile(values, 0.95):8.1f} "
            f"{statistics.mean(cpu[label]):8.1f}  {verdict:7}  {paths[label]}"
        )
    failed = sum(statistics.median(v) >= TARGET_MS for v in times.values())
    lines.append(f"{failed} of {len(times)} pages at or over {TARGET_MS:.0f} ms median")
    return "\n".join(lines)


@contextmanager
def database(name: str) -> Iterator[str | None]:
    if name == "sqlite":
        yield None
        return
    from tests.support.postgres import start_postgres

    postgres = start_postgres()
    try:
        yield postgres.url("postgres")
    finally:
        postgres.stop()


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def run_one(name: str, sizes: Sizes, args: argparse.Namespace) -> None:
    with ExitStack() as stack:
        url = stack.enter_context(database(name))
        server = stack.enter_context(
            running_server(dispatcher=False, database_url=url, keep=args.keep)
        )
        started = time.perf_counter()
        username, request_id = fill(server, sizes, args.audit)
        print(
            f"# {name}: {sizes.messages:,} messages, {sizes.requests:,} requests, "
            f"{args.audit:,} audit entries stored in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        chosen = [p for p in pages(request_id) if not args.only or args.only in p[0]]
        print(f"  before: {load()}", flush=True)
        times, cpu = measure(server, username, chosen, args.rounds)
        print(f"  after:  {load()}  ({args.rounds} rounds)")
        print(table(name, times, cpu, dict(chosen)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", action="append", choices=["sqlite", "postgres"], dest="databases"
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--audit", type=int, default=10_000, help="audit entries")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", default="", help="measure only pages whose label has this")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    for name in args.databases or ["sqlite", "postgres"]:
        run_one(name, Sizes(args.messages, args.requests), args)


if __name__ == "__main__":
    main()
