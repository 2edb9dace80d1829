"""A mailing's rules: its life cycle, its settings, its text, and how recipients are checked."""

from __future__ import annotations

import pytest

from smsdesk.domain.mailing_checks import Check, Lookups, RecipientInput, check_recipients
from smsdesk.domain.mailings import (
    Action,
    MailingProblem,
    MailingSpec,
    Status,
    check_spec,
    check_window,
    render,
    require_draft,
    text_variables,
    transition,
)


@pytest.mark.parametrize(
    ("status", "action", "after"),
    [
        (Status.DRAFT, Action.SCHEDULE, Status.SCHEDULED),
        (Status.SCHEDULED, Action.UNSCHEDULE, Status.DRAFT),
        (Status.DRAFT, Action.START, Status.SENDING),
        (Status.SCHEDULED, Action.START, Status.SENDING),
        (Status.SENDING, Action.PAUSE, Status.PAUSED),
        (Status.PAUSED, Action.RESUME, Status.SENDING),
        (Status.SENDING, Action.FINISH, Status.DONE),
        (Status.PAUSED, Action.CANCEL, Status.CANCELLED),
        (Status.SENDING, Action.CANCEL, Status.CANCELLED),
    ],
)
def test_allowed_steps_of_the_life_cycle(status: Status, action: Action, after: Status) -> None:
    """draft -> scheduled -> sending -> paused -> done, and cancelled from any open status."""
    assert transition(status, action) is after


@pytest.mark.parametrize(
    ("status", "action", "message"),
    [
        (
            Status.DRAFT,
            Action.PAUSE,
            "A mailing that is draft cannot pause; only a mailing that is sending can.",
        ),
        (
            Status.DONE,
            Action.CANCEL,
            "A mailing that is done cannot cancel; only a mailing that is draft or paused or "
            "scheduled or sending can.",
        ),
        (
            Status.CANCELLED,
            Action.RESUME,
            "A mailing that is cancelled cannot resume; only a mailing that is paused can.",
        ),
        (
            Status.SENDING,
            Action.START,
            "A mailing that is sending cannot start; only a mailing that is draft or scheduled "
            "can.",
        ),
    ],
)
def test_refused_steps_say_which_statuses_allow_them(
    status: Status, action: Action, message: str
) -> None:
    """A refused step names the current status and the statuses that allow the action."""
    with pytest.raises(MailingProblem) as refused:
        transition(status, action)
    assert refused.value.message == message
    assert refused.value.field == "status"


def test_every_status_but_draft_refuses_changes() -> None:
    """Only a draft is changed, given recipients or deleted."""
    require_draft(Status.DRAFT, "changed")
    for status in set(Status) - {Status.DRAFT}:
        with pytest.raises(MailingProblem, match=f"The mailing is {status.value}; only a draft"):
            require_draft(status, "deleted")


def test_a_mailing_defaults_to_priority_three_and_cleans_its_settings() -> None:
    """Priority 3 so service SMS go first; name spaces and repeated tags are tidied."""
    spec = check_spec(MailingSpec(name="  Outage   notice ", text="Hi", tags=("a", "a", "b")))
    assert (spec.name, spec.priority, spec.tags) == ("Outage notice", 3, ("a", "b"))


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (MailingSpec(name=" "), "name", "The mailing's name is empty; enter a name."),
        (
            MailingSpec(name="x"),
            "text",
            "Give the mailing either its own text or a reply template, not both or neither.",
        ),
        (
            MailingSpec(name="x", text="Hi", priority=4),
            "priority",
            "Priority 4 does not exist; use 1 (fastest), 2 or 3.",
        ),
        (
            MailingSpec(name="x", text="Hi", throttle_per_minute=0),
            "throttle_per_minute",
            "The throttle must be from 1 to 100000 messages a minute, not 0.",
        ),
        (
            MailingSpec(name="x", text="Hi {name"),
            "text",
            "The { at position 4 does not start a variable such as {first_name}; write {{ for "
            "a literal brace.",
        ),
    ],
)
def test_settings_that_cannot_be_sent_are_refused(
    spec: MailingSpec, field: str, message: str
) -> None:
    with pytest.raises(MailingProblem) as refused:
        check_spec(spec)
    assert (refused.value.field, refused.value.message) == (field, message)


def test_a_window_needs_days_and_must_close_after_it_opens() -> None:
    """Day names or numbers; a window over midnight is refused with its times."""
    window = check_window(["Monday", "fri", 6], "09:00", "20:00")
    assert window.as_dict() == {"days": ["mon", "fri", "sun"], "from": "09:00", "to": "20:00"}
    with pytest.raises(MailingProblem, match="closes at 08:00, before it opens at 22:00"):
        check_window(["mon"], "22:00", "08:00")
    with pytest.raises(MailingProblem, match="no days"):
        check_window([], "09:00", "10:00")
    with pytest.raises(MailingProblem, match="'noon' is not a time of day"):
        check_window(["mon"], "noon", "14:00")


def test_the_text_is_filled_in_per_recipient() -> None:
    """Customer fields and a row's own columns fill the text; {{ }} stay literal braces; a
    missing value is refused naming the variable."""
    text = "Hi {customer.name}, your code {code} {{ok}}"
    assert text_variables(text) == ("customer.name", "code")
    assert render(text, {"customer.name": "Ada", "code": "42"}) == "Hi Ada, your code 42 {ok}"
    with pytest.raises(MailingProblem) as refused:
        render(text, {"customer.name": "Ada"})
    assert refused.value.field == "variables.code"


def _rows(*numbers: str) -> list[RecipientInput]:
    return [RecipientInput(i + 2, n) for i, n in enumerate(numbers)]


def test_each_recipient_gets_one_result_in_order_of_precedence() -> None:
    """Invalid before duplicate before opted out before no consent; each row says why."""
    rows = _rows(
        "+31612345678",  # valid
        "0612345678",  # the same number written locally: duplicate
        "+3161234",  # invalid
        "+31687654321",  # opted out (and consenting)
        "+31611111111",  # customer without consent
        "+31622222222",  # customer who withdrew
        "+31633333333",  # no customer at all
        "+31644444444",  # already in the mailing
    )
    lookups = Lookups(
        opted_out={"+31687654321"},
        owners={
            "+31612345678": "c1",
            "+31687654321": "c2",
            "+31611111111": "c3",
            "+31622222222": "c4",
        },
        consent={"c1": True, "c2": True, "c4": False},
        seen={"+31644444444"},
    )
    report = check_recipients(rows, lookups, default_country_code="+31")
    results = [(r.line, r.result) for r in report.rows]
    assert results == [
        (2, Check.VALID),
        (3, Check.DUPLICATE),
        (4, Check.INVALID),
        (5, Check.OPTED_OUT),
        (6, Check.NO_CONSENT),
        (7, Check.NO_CONSENT),
        (8, Check.NO_CONSENT),
        (9, Check.DUPLICATE),
    ]
    reasons = {r.line: r.reason for r in report.rows}
    assert reasons[3] == "+31612345678 is also on line 2."
    assert reasons[4] is not None and "too short" in reasons[4]
    assert reasons[6] == "The customer has not consented to mailings."
    assert reasons[7] == "The customer withdrew consent to mailings."
    assert report.counts.as_dict() == {
        "valid": 1,
        "invalid": 1,
        "duplicate": 2,
        "opted_out": 1,
        "no_consent": 3,
        "total": 8,
    }


def test_the_consent_override_never_reaches_an_opted_out_number() -> None:
    """With consent overridden, customers without consent are valid; STOP still blocks."""
    lookups = Lookups(opted_out={"+31687654321"})
    report = check_recipients(
        _rows("+31611111111", "+31687654321"),
        lookups,
        default_country_code=None,
        override_consent=True,
    )
    assert [r.result for r in report.rows] == [Check.VALID, Check.OPTED_OUT]
