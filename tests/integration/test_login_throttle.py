"""The login throttle and web sessions are shared through the database: two `serve` processes
on one database allow five wrong passwords in total, and a session works in either."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypedDict

from sqlalchemy.engine import Engine

from smsdesk.store import login_failures
from smsdesk.store.audit import AuditFilter, list_entries
from smsdesk.store.login_failures import WINDOW_SECONDS
from tests.conftest import database_url
from tests.support.harness import Harness, running_service
from tests.support.webui import PASSWORD, create_user, csrf_of, log_in


class ServiceOptions(TypedDict, total=False):
    clock: Callable[[], float]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def two_processes(
    tmp_path: Path, engine: Engine, clock: Clock | None = None
) -> AsyncIterator[tuple[Harness, Harness]]:
    """Two services with their own apps on the same database (and the same secret key)."""
    url = database_url(engine)
    options: ServiceOptions = {"clock": clock} if clock else {}
    async with (
        running_service(tmp_path / "data", url, dispatcher=False, **options) as one,
        running_service(tmp_path / "data", url, dispatcher=False, **options) as two,
    ):
        yield one, two


async def test_two_processes_together_allow_five_wrong_passwords(
    tmp_path: Path, engine: Engine
) -> None:
    """Wrong passwords alternate between the two apps; the sixth attempt waits, in both."""
    async with two_processes(tmp_path, engine) as (one, two):
        create_user(one.service, "admin", "admin")
        async with one.browser() as a, two.browser() as b:
            answers = [
                (await log_in(a if n % 2 == 0 else b, "admin", "wrong password")).status_code
                for n in range(8)
            ]
            assert answers == [401] * 5 + [429] * 3
            assert (await log_in(a, "admin")).status_code == 429
            assert (await log_in(b, "admin")).status_code == 429


async def test_a_right_password_in_one_process_clears_the_count_in_both(
    tmp_path: Path, engine: Engine
) -> None:
    async with two_processes(tmp_path, engine) as (one, two):
        create_user(one.service, "admin", "admin")
        async with one.browser() as a, two.browser() as b:
            for _ in range(4):
                assert (await log_in(a, "admin", "wrong password")).status_code == 401
            assert (await log_in(b, "admin")).status_code == 303
            for _ in range(5):
                assert (await log_in(a, "admin", "wrong password")).status_code == 401
            assert (await log_in(a, "admin")).status_code == 429


async def test_the_pause_ends_after_the_window_and_old_failures_are_deleted(
    tmp_path: Path, engine: Engine
) -> None:
    """After 15 minutes the name may be tried again; rows of the old window do not pile up."""
    clock = Clock()
    async with two_processes(tmp_path, engine, clock) as (one, two):
        create_user(one.service, "admin", "admin")
        async with one.browser() as a, two.browser() as b:
            for _ in range(5):
                await log_in(a, "admin", "wrong password")
            assert (await log_in(b, "admin")).status_code == 429
            clock.now += WINDOW_SECONDS + 1
            assert (await log_in(b, "someone", "wrong password")).status_code == 401
            assert login_failures.count(engine) == 1  # only the new failure is kept
            assert (await log_in(b, "admin")).status_code == 303


def test_attempts_at_the_same_moment_cannot_pass_the_limit(engine: Engine) -> None:
    """Twenty attempts racing from many threads: exactly five may check a password."""
    allowed: list[int] = []
    start = threading.Barrier(20)

    def attempt() -> None:
        start.wait()
        allowed.append(login_failures.begin_attempt(engine, "10.0.0.9", "Admin", 1000.0))

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(allowed)[:5] == [0] * 5
    assert all(wait > 0 for wait in sorted(allowed)[5:])


async def test_a_session_made_in_one_process_works_and_ends_in_the_other(
    tmp_path: Path, engine: Engine
) -> None:
    async with two_processes(tmp_path, engine) as (one, two):
        create_user(one.service, "admin", "admin")
        async with one.browser() as a, two.browser() as b:
            assert (await log_in(a, "admin", PASSWORD)).status_code == 303
            b.cookies.update(a.cookies)
            page = await b.get("/dashboard")
            assert page.status_code == 200
            out = await b.post("/logout", data={"csrf_token": csrf_of(page.text)})
            assert out.status_code == 303
            b.cookies.clear()
            after = await a.get("/dashboard")
            assert after.status_code == 303 and after.headers["location"].startswith("/login")


async def test_logins_and_failures_are_audited_with_address_and_name(
    tmp_path: Path, engine: Engine
) -> None:
    """A failed login names the address and the user name tried; never the password."""
    async with two_processes(tmp_path, engine) as (one, _two):
        user = create_user(one.service, "admin", "admin")
        async with one.browser() as a:
            await log_in(a, "Admin", "not-my-password-123")
            await log_in(a, "admin", PASSWORD)
            page = await a.get("/dashboard")
            await a.post("/logout", data={"csrf_token": csrf_of(page.text)})
        with engine.connect() as conn:
            rows = list(reversed(list_entries(conn, AuditFilter(action="login."))))
        assert [r.action for r in rows] == ["login.failed", "login.succeeded", "login.logged_out"]
        failed, succeeded, logged_out = rows
        assert (failed.actor_kind, failed.actor_name, failed.address) == (
            "user",
            "Admin",
            "127.0.0.1",
        )
        assert failed.actor_id is None and '"username":"Admin"' in failed.details
        assert "not-my-password-123" not in str(failed._mapping)
        assert (succeeded.actor_id, succeeded.target_id) == (str(user.id), str(user.id))
        assert (logged_out.actor_name, logged_out.address) == ("admin", "127.0.0.1")
