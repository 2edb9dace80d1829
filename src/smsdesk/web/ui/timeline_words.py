"""Server-made texts of a message, in the page's language: timeline details and codes.

The store writes a timeline line's detail as a short English text (the API shows it as is);
screens show it translated. Known forms are matched here; anything else came from the
provider and is shown quoted as the provider's own words (marked `lang="en"`, so a reader
and the Dutch page test know it is not ours). Codes that providers report are explained in
words where their meaning is known.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markupsafe import Markup, escape

from smsdesk.domain.message import Status
from smsdesk.providers.registry import UnknownModule, get_module

Gettext = Callable[[str], str]


def N_(text: str) -> str:
    """Marks a text for the catalogue; translated where it is shown."""
    return text


def _quoted(text: str) -> Markup:
    return Markup('<q class="provider-text" lang="en" data-user-text>{}</q>').format(text)


# (pattern, translated template); the template's {0}, {1}... are the pattern's groups.
# A group named `quote` is the provider's own text, shown quoted.
_DETAILS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"scheduled\Z"), N_("scheduled for later")),
    (re.compile(r"attempt (\d+) by (.+)\Z"), N_("attempt {0} by sender process {1}")),
    (re.compile(r"lease expired; taken up again\Z"), N_("sending took too long; queued again")),
    (
        re.compile(r"lease expired; a delivery report shows the provider took it.*\Z"),
        N_("sending took too long; a delivery report shows the provider took it: not sent again"),
    ),
    (
        re.compile(r"lease expired; the provider says it took it.*\Z"),
        N_("sending took too long; the provider says it took the message: not sent again"),
    ),
    (
        re.compile(r"lease expired; the provider has no record of it.*\Z"),
        N_("sending took too long; the provider has no record of the message: queued again"),
    ),
    (
        re.compile(r"a delivery report shows the provider took an earlier attempt.*\Z"),
        N_("a delivery report shows the provider took an earlier attempt: not sent again"),
    ),
    (re.compile(r"accepted by the provider\Z"), N_("accepted by the provider")),
    (re.compile(r"validity period ended\Z"), N_("the validity period ended")),
    (
        re.compile(r"validity period ends before the next try \(last error: (?P<quote>.*)\)\Z"),
        N_("the validity period ends before the next try; the provider's last answer: {quote}"),
    ),
    (
        re.compile(r"The recipient opted out of SMS after this message was accepted.*\Z"),
        N_("The recipient opted out of SMS after this message was accepted; it was not sent."),
    ),
    (re.compile(r"cancel by (.+?)(?: \(bulk\))?\Z"), N_("cancelled by {0}")),
    (re.compile(r"resend by (.+?)(?: \(bulk\))?\Z"), N_("sent again by {0}")),
    (re.compile(r"ignored: message is already (\w+)\Z"), N_("ignored: the message is already {0}")),
]
_STATUSES = frozenset(status.value for status in Status)
_ACTORS = {"operator": N_("a user"), "api": N_("the REST API"), "cli": N_("the command line")}


def detail_text(detail: str | None, gettext: Gettext) -> Markup:
    """A timeline detail (or a message's last error) in the page's language."""
    if not detail:
        return Markup("")
    for pattern, template in _DETAILS:
        found = pattern.match(detail)
        if found is None:
            continue
        named = found.groupdict()
        groups = [
            gettext(_ACTORS[g]) if g in _ACTORS else gettext(g) if g in _STATUSES else g
            for g in found.groups()
            if g is not None and g not in named.values()
        ]
        words = escape(gettext(template))
        if "quote" in named:
            words = Markup(str(words).replace("{quote}", str(_quoted(named["quote"]))))
        for index, value in enumerate(groups):
            words = Markup(str(words).replace(f"{{{index}}}", str(escape(value))))
        return words
    return Markup("{} {}").format(gettext("The provider answered:"), _quoted(detail))


# What providers' codes mean, where we know it (SMPP receipts' `stat`, and our error classes
# for answers that carried no code of their own).
_CODES: dict[str, str] = {
    "DELIVRD": N_("delivered to the phone"),
    "UNDELIV": N_("could not be delivered to the phone (switched off, unknown or blocked)"),
    "EXPIRED": N_("the network gave up: the phone was unreachable until the validity ended"),
    "REJECTD": N_("refused by the network"),
    "DELETED": N_("deleted by the network before delivery"),
    "ACCEPTD": N_("accepted by the network, not yet delivered"),
    "ENROUTE": N_("on its way to the phone"),
    "UNKNOWN": N_("the network does not know what became of it"),
    "opted_out": N_("not sent: the recipient opted out of SMS"),
    "TemporaryError": N_("a temporary failure; smsdesk tries again"),
    "PermanentError": N_("refused for good; smsdesk does not try again"),
    "AuthenticationError": N_("the provider refused the account's login details"),
    "RateLimited": N_("the provider asked to slow down; smsdesk tries again later"),
    # Why a message moved to the next connection of its route (a failover line).
    "not_taken": N_("the connection certainly did not take the message"),
    "connection_refused": N_("the connection's account was refused; the next connection tries"),
    "circuit_open": N_("the connection failed too often and is paused"),
    "plan_exhausted": N_("every connection of the route was tried"),
}
_SMPP_ERRORS: dict[str, str] = {
    "000": N_("no error"),
    "001": N_("the number is unknown to the network"),
}
_STAT = re.compile(r"([A-Z]{7})(?::(\d{3}))?\Z")


def code_meaning(code: str | None, gettext: Gettext) -> str | None:
    """What a reported code means, in words ("UNDELIV:001": not delivered; unknown number)."""
    if not code:
        return None
    if code in _CODES:
        return gettext(_CODES[code])
    found = _STAT.match(code)
    if found is None or found.group(1) not in _CODES:
        return None
    words = gettext(_CODES[found.group(1)])
    error = found.group(2)
    if error and error in _SMPP_ERRORS and error != "000":
        words += "; " + gettext(_SMPP_ERRORS[error])
    return words


def module_title(name: str | None, gettext: Gettext) -> str:
    """A module by its title in the page's language (its name if it is no longer known)."""
    if not name:
        return ""
    try:
        return gettext(get_module(name).title)
    except UnknownModule:
        return name


def failover_text(from_connection: str | None, to_connection: str | None, gettext: Gettext) -> str:
    """A failover line's detail: which connection the message left and which it went to."""
    return gettext(N_("moved from connection {from} to {to}")).format_map(
        {"from": from_connection or "\u2013", "to": to_connection or "\u2013"}
    )


_FROM_NUMBER = re.compile(r"SMS from (\+?[0-9]+)\Z")


def request_title(title: str | None, gettext: Gettext) -> str:
    """A request's title; one made from an SMS without text ("SMS from +31...") translated."""
    found = _FROM_NUMBER.match(title or "")
    if found is None:
        return title or ""
    return gettext(N_("SMS from {number}")).replace("{number}", found.group(1))
