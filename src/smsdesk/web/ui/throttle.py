"""Slowing down password guessing: after five wrong passwords in 15 minutes, a pause.

Counted per client address and user name, in the database (`store/login_failures.py`), so
several `serve` processes on one database allow five attempts in total, not five each; a
stranger cannot lock a colleague out from another address. A right password clears the count.
"""

from __future__ import annotations

from smsdesk.service import Service
from smsdesk.store import login_failures
from smsdesk.store.login_failures import MAX_FAILURES, WINDOW_SECONDS

__all__ = ["MAX_FAILURES", "WINDOW_SECONDS", "LoginThrottle"]


class LoginThrottle:
    def __init__(self, service: Service) -> None:
        self.engine = service.engine

    def begin(self, address: str, username: str, now: float) -> int:
        """0: check the password (the attempt counts as wrong until `succeeded`); otherwise
        the seconds this address must wait before trying this user name again."""
        return login_failures.begin_attempt(self.engine, address, username, now)

    def succeeded(self, address: str, username: str) -> None:
        login_failures.succeeded(self.engine, address, username)
