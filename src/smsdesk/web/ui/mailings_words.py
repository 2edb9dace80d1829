"""The words of the mailing screens that the server writes: status names, check results, and
refusals and check reasons made in English by the domain, in the page's language.

A refusal with a `msgid` is translated by it, its status and action values too; a check
reason (`domain.mailing_checks`, `domain.phone`) is matched against `REASONS`, the English
sentences with `{placeholders}`; anything else goes through the shared field-error catalogue.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

from smsdesk.domain.errors import DomainError
from smsdesk.domain.mailings import NOT_A_DRAFT, REFUSED
from smsdesk.domain.spend_settings import REFUSALS
from smsdesk.web.errors import translated
from smsdesk.web.ui.field_errors import translate_error
from smsdesk.web.ui.outbox import STATUS_NAMES

Gettext = Callable[[str], str]


def N_(message: str) -> str:
    """Marks a text for translation where it is defined; it is translated when shown."""
    return message


MAILING_STATUSES = {
    "draft": N_("Draft"),
    "scheduled": N_("Scheduled"),
    "sending": N_("Sending"),
    "paused": N_("Paused"),
    "done": N_("Done"),
    "cancelled": N_("Cancelled"),
}
CHECK_NAMES = {
    "valid": N_("Valid"),
    "invalid": N_("Invalid number"),
    "duplicate": N_("Duplicate"),
    "opted_out": N_("Opted out"),
    "no_consent": N_("No consent"),
}
# Recipients refused when their turn came (the check found them valid).
BLOCKED_NAMES = {
    **CHECK_NAMES,
    "refused": N_("Refused by the outbox"),
    "opted_out": N_("Opted out"),
    "no_consent": N_("No consent"),
}
MESSAGE_STATUSES = {
    "waiting": N_("waiting"),
    "not_sent": N_("not sent"),
    "refused": N_("refused"),
    "opted_out": N_("opted out"),
    "no_consent": N_("no consent"),
    **STATUS_NAMES,
}
ACTIONS = {
    "schedule": N_("be scheduled"),
    "unschedule": N_("be unscheduled"),
    "start": N_("start"),
    "pause": N_("pause"),
    "resume": N_("resume"),
    "finish": N_("finish"),
    "cancel": N_("be cancelled"),
}
# What only a draft can be: the end of the sentence after "only a draft".
WHAT = {
    "changed": N_("can be changed"),
    "deleted": N_("can be deleted"),
    "given recipients": N_("can be given recipients"),
}
DAY_LABELS = {
    "mon": N_("Mon"),
    "tue": N_("Tue"),
    "wed": N_("Wed"),
    "thu": N_("Thu"),
    "fri": N_("Fri"),
    "sat": N_("Sat"),
    "sun": N_("Sun"),
}

# Check reasons and number refusals, as `str.format` writes them.
REASONS: tuple[str, ...] = (
    "The text needs {{{name}}}, which this recipient has no value for.",
    "{number} is also on line {line}.",
    "{number} is already a recipient of this mailing.",
    "{number} opted out of SMS (replied STOP).",
    "{number} is no customer's number, so no consent is recorded.",
    "The customer has not consented to mailings.",
    "The customer withdrew consent to mailings.",
    "The mobile number is empty; enter one such as {example}.",
    "'{raw}' contains characters that are not part of a phone number; use digits and an "
    "optional leading +, e.g. {example}.",
    "'{raw}' is too short to be a phone number of that country; enter the full number with "
    "its country code.",
    "'{raw}' is too long to be a phone number of that country; check the number.",
    "'{raw}' has the wrong number of digits for that country; check the number.",
    "'{raw}' starts with a country code that does not exist.",
    "'{raw}' is a landline and cannot receive SMS; enter a mobile number.",
    "'{raw}' is not a mobile number and cannot receive SMS; enter a mobile number.",
    "'{raw}' is too short for a mobile number in {where}; check the digits.",
    "'{raw}' is too long for a mobile number in {where}; check the digits.",
    "'{raw}' has the wrong number of digits for a mobile number in {where}; check the digits.",
    "'{raw}' is not a valid number in {where}; check the digits.",
    "'{raw}' has no country code and no default country code is set; write it as {example} "
    "or set the default country code in the SMS configuration.",
)


def _regex(template: str) -> re.Pattern[str]:
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is not None:
            parts.append(f"(?P<{name}>.+?)")
    return re.compile("".join(parts), re.DOTALL)


# The spend controls' refusals, translated in spend.po, are reasons too.
_COMPILED = tuple((t, _regex(t)) for t in (*REASONS, *REFUSALS.values()))


def reason_text(reason: str | None, gettext: Gettext) -> str:
    """A check reason (or an outbox refusal) in the page's language."""
    if not reason:
        return ""
    for template, pattern in _COMPILED:
        found = pattern.fullmatch(reason)
        if found is not None:
            try:
                return gettext(template).format(**found.groupdict())
            except (KeyError, IndexError, ValueError):
                return reason
    return translate_error(reason, gettext)


def _or_list(value: str, gettext: Gettext) -> str:
    words = [gettext(MAILING_STATUSES.get(v, v)) for v in value.split(" or ")]
    return f" {gettext('or')} ".join(words)


def problem_text(exc: DomainError, gettext: Gettext) -> str:
    """A refusal about a mailing in the page's language, with its status words translated."""
    msgid = getattr(exc, "msgid", None)
    params: dict[str, str] = dict(getattr(exc, "params", {}) or {})
    if msgid in (REFUSED, NOT_A_DRAFT):
        if gettext(msgid) == msgid:
            return exc.message  # English: the words are already right
        words = {
            "status": gettext(MAILING_STATUSES.get(params.get("status", ""), "")),
            "action": gettext(ACTIONS.get(params.get("action", ""), "")),
            "allowed": _or_list(params.get("allowed", ""), gettext),
            "what": gettext(WHAT.get(params.get("what", ""), "")),
        }
        params.update({k: v for k, v in words.items() if v and k in params})
        try:
            return gettext(msgid or "").format(**params)
        except (KeyError, IndexError, ValueError):
            return exc.message
    if msgid:
        return translated(exc.message, gettext, exc)
    return reason_text(exc.message, gettext)
