"""The pause after wrong passwords: per address and name, over a sliding 15 minutes."""

from __future__ import annotations

from smsdesk.web.ui.throttle import MAX_FAILURES, WINDOW_SECONDS, LoginThrottle


def test_the_pause_ends_when_the_oldest_failure_leaves_the_window() -> None:
    throttle = LoginThrottle()
    for second in range(MAX_FAILURES):
        assert throttle.wait_seconds("10.0.0.1", "Admin", float(second)) == 0
        throttle.failed("10.0.0.1", "Admin", float(second))
    assert throttle.wait_seconds("10.0.0.1", "admin", 10.0) == WINDOW_SECONDS - 10
    assert throttle.wait_seconds("10.0.0.2", "admin", 10.0) == 0  # another address
    assert throttle.wait_seconds("10.0.0.1", "anna", 10.0) == 0  # another name
    assert throttle.wait_seconds("10.0.0.1", "admin", WINDOW_SECONDS + 0.5) == 0


def test_a_right_password_clears_the_count() -> None:
    throttle = LoginThrottle()
    for second in range(MAX_FAILURES - 1):
        throttle.failed("10.0.0.1", "admin", float(second))
    throttle.succeeded("10.0.0.1", "ADMIN")
    throttle.failed("10.0.0.1", "admin", 10.0)
    assert throttle.wait_seconds("10.0.0.1", "admin", 11.0) == 0
