"""The message lifecycle."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsdesk.domain.errors import InvalidStatusTransition
from smsdesk.domain.message import (
    FINAL_STATUSES,
    Status,
    TransitionOutcome,
    check_cancel,
    check_resend,
    require_transition,
    transition,
)


def test_the_normal_path_is_allowed() -> None:
    """queued → sending → sent → delivered is applied step by step."""
    status = Status.QUEUED
    for new in (Status.SENDING, Status.SENT, Status.DELIVERED):
        result = transition(status, new)
        assert result.applied
        status = result.status
    assert status is Status.DELIVERED


def test_late_sent_never_replaces_delivered() -> None:
    """A report of *sent* arriving after *delivered* is stale and changes nothing."""
    result = transition(Status.DELIVERED, Status.SENT)
    assert result.outcome is TransitionOutcome.STALE
    assert result.status is Status.DELIVERED


def test_repeated_status_is_a_duplicate() -> None:
    """The same report twice is recognised as a duplicate, not applied twice."""
    assert transition(Status.DELIVERED, Status.DELIVERED).outcome is TransitionOutcome.DUPLICATE


def test_fast_report_before_send_result_is_applied() -> None:
    """A delivery report may overtake the provider's answer: sending → delivered is allowed."""
    assert transition(Status.SENDING, Status.DELIVERED).applied


@given(st.sampled_from(sorted(FINAL_STATUSES)), st.sampled_from(list(Status)))
def test_final_statuses_never_change_by_report(final: Status, new: Status) -> None:
    """No report moves a message out of a final status."""
    assert transition(final, new).status is final


def test_operator_moves_are_checked() -> None:
    """Cancel only from queued, resend only after the message ended without reaching the phone."""
    assert check_cancel(Status.QUEUED) is Status.CANCELLED
    with pytest.raises(InvalidStatusTransition, match="Only queued messages"):
        check_cancel(Status.SENT)
    assert check_resend(Status.FAILED) is Status.QUEUED
    with pytest.raises(InvalidStatusTransition, match="delivered"):
        check_resend(Status.DELIVERED)
    with pytest.raises(InvalidStatusTransition, match="cannot become"):
        require_transition(Status.DELIVERED, Status.QUEUED)
