"""The pure parts of notifications: the words in each language, links, retry waits, choices."""

from __future__ import annotations

import pytest

from smsdesk.notify.events import choices
from smsdesk.notify.messages import render, sms_text, with_links
from smsdesk.notify.preferences import ContactInvalid, check_contact, parse_choices
from smsdesk.notify.retry import NotifyPolicy, next_attempt_at


def test_a_notification_reads_in_the_users_language_with_a_link_on_its_own_line() -> None:
    """English and Dutch words; a title of several lines becomes one line; the link is made
    absolute on the installation's address when sent."""
    english = render("request.assigned", "en", "Parcel\nlate", None, "01ABC")
    assert english.subject == "Request assigned to you: Parcel late"
    dutch = render("request.new_in_group", "nl", "Factuur", "Billing", "01ABC")
    assert dutch.subject == "Nieuwe aanvraag in Billing: Factuur"
    assert (
        dutch.body.splitlines()[0] == "Er is een nieuwe aanvraag binnengekomen in de groep Billing."
    )
    assert with_links(dutch.body, "https://desk.example.org/").splitlines()[3] == (
        "https://desk.example.org/requests/01ABC"
    )
    assert sms_text(english) == "Request assigned to you: Parcel late\n/requests/01ABC"
    unknown = render("request.customer_answered", "fr", "Hi", None, "01ABC")
    assert unknown.subject == "The customer answered: Hi"


def test_retries_wait_longer_each_time_and_stop_after_the_last_attempt() -> None:
    """30 s, 60 s, 120 s ... up to an hour; dead after the policy's number of attempts."""
    policy = NotifyPolicy(first_delay=30, max_delay=3600, max_attempts=8)
    assert [next_attempt_at(n, 0.0, policy) for n in (1, 2, 3)] == [30.0, 60.0, 120.0]
    assert next_attempt_at(7, 0.0, policy) == 1920.0
    assert next_attempt_at(8, 0.0, policy) is None
    assert next_attempt_at(9, 0.0, NotifyPolicy(max_attempts=10)) == 3600.0


def test_choices_are_read_leniently_and_parsed_strictly() -> None:
    """Stored choices keep only known events and channels; typed ones are refused by name."""
    stored = '{"request.assigned": ["sms", "fax", "email"], "request.closed": ["email"]}'
    assert choices(stored) == {"request.assigned": ["email", "sms"]}
    assert choices("not json") == {} and choices(None) == {}
    assert parse_choices(["request.assigned=sms,email", "request.new_in_group=none"]) == {
        "request.assigned": ["email", "sms"],
        "request.new_in_group": [],
    }
    with pytest.raises(ContactInvalid, match="not fax"):
        parse_choices(["request.assigned=fax"])


def test_contact_details_are_checked_and_normalised() -> None:
    """The number is stored E.164; an unknown time zone and a channel without its address are
    refused by field."""
    contact = check_contact(
        email=" anna@example.org ",
        phone="06 1234 5678",
        time_zone="Europe/Amsterdam",
        notify={"request.assigned": ["sms"]},
        default_country_code="+31",
    )
    assert (contact.email, contact.phone) == ("anna@example.org", "+31612345678")
    with pytest.raises(ContactInvalid) as refused:
        check_contact(email="", phone="", time_zone="Mars/Base", notify={}, default_country_code="")
    assert [e.field for e in refused.value.errors] == ["time_zone"]
    with pytest.raises(ContactInvalid) as no_address:
        check_contact(
            email="", phone="", time_zone="", notify={"request.assigned": ["email"]},
            default_country_code="",
        )  # fmt: skip
    assert [e.field for e in no_address.value.errors] == ["email"]
