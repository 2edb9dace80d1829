"""A message's timeline reads in Dutch on a Dutch page: our details translated, the provider's
own words quoted as theirs, and reported codes explained."""

from __future__ import annotations

from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.timeline_words import code_meaning, detail_text, request_title

DUTCH = translations("nl").gettext
ENGLISH = translations("en").gettext


def test_our_details_are_translated_with_their_values() -> None:
    """Attempts, operator actions and ignored reports keep their numbers, names and status."""
    assert detail_text("attempt 2 by host-1:55", DUTCH) == "poging 2 door verzendproces host-1:55"
    assert detail_text("cancel by anna (bulk)", DUTCH) == "geannuleerd door anna"
    assert detail_text("resend by operator", DUTCH) == "opnieuw verzonden door een gebruiker"
    assert detail_text("ignored: message is already delivered", DUTCH) == (
        "genegeerd: het bericht is al afgeleverd"
    )
    assert detail_text("accepted by the provider", ENGLISH) == "accepted by the provider"


def test_a_lease_that_ran_out_says_in_dutch_why_a_message_was_not_sent_again() -> None:
    """The lines written when a dead sender's messages are looked at read in Dutch too."""
    from smsdesk.store import lease_expiry, reports

    assert detail_text(lease_expiry.PROVEN_BY_REPORT, DUTCH) == (
        "verzenden duurde te lang; een afleverrapport toont dat de aanbieder het bericht "
        "aannam: niet opnieuw verzonden"
    )
    assert detail_text(lease_expiry.PROVEN_BY_ASKING, DUTCH).endswith("niet opnieuw verzonden")
    assert detail_text(lease_expiry.NOT_AT_PROVIDER, DUTCH).endswith("opnieuw in de wachtrij")
    assert "eerdere poging" in detail_text(reports.ADOPTED, DUTCH)


def test_a_providers_own_words_are_quoted_and_escaped() -> None:
    """Text we did not write is quoted, marked as English and never run as markup."""
    shown = detail_text("HTTP 400: <b>bad</b> number", DUTCH)
    assert shown.startswith('De aanbieder antwoordde: <q class="provider-text" lang="en"')
    assert "&lt;b&gt;bad&lt;/b&gt; number</q>" in shown
    last = detail_text("validity period ends before the next try (last error: timeout)", DUTCH)
    assert "laatste antwoord van de aanbieder:" in last and ">timeout</q>" in last


def test_delivery_codes_are_explained_in_words() -> None:
    """UNDELIV:001 says it was not delivered and why; unknown codes get no guess."""
    assert code_meaning("UNDELIV:001", ENGLISH) == (
        "could not be delivered to the phone (switched off, unknown or blocked); "
        "the number is unknown to the network"
    )
    assert code_meaning("DELIVRD:000", DUTCH) == "afgeleverd op de telefoon"
    assert (
        code_meaning("opted_out", DUTCH)
        == "niet verzonden: de ontvanger heeft zich voor sms afgemeld"
    )
    assert code_meaning("E123", DUTCH) is None and code_meaning(None, DUTCH) is None


def test_a_title_made_from_an_empty_sms_is_translated() -> None:
    """ "SMS from +316..." reads "Sms van +316..." on a Dutch page; other titles stay as typed."""
    assert request_title("SMS from +31612345678", DUTCH) == "Sms van +31612345678"
    assert request_title("SMS from +31612345678", ENGLISH) == "SMS from +31612345678"
    assert request_title("Mijn pakket", DUTCH) == "Mijn pakket"
