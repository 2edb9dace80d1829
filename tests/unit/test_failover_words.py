"""A failover line of a message's timeline reads in Dutch: where the message moved, and why."""

from __future__ import annotations

from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.timeline_words import code_meaning, failover_text

DUTCH = translations("nl").gettext


def test_a_failover_line_names_both_connections_and_its_reason() -> None:
    """The line's detail is the connection left; the line's connection the one it went to."""
    assert failover_text("default", "01RESERVE", DUTCH) == (
        "overgezet van verbinding default naar 01RESERVE"
    )
    assert failover_text(None, "x", DUTCH) == "overgezet van verbinding \u2013 naar x"
    for reason in ("not_taken", "connection_refused", "circuit_open", "plan_exhausted"):
        meaning = code_meaning(reason, DUTCH)
        assert meaning and meaning != code_meaning(reason, translations("en").gettext)
