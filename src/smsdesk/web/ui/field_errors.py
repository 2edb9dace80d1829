"""Validation messages of the SMS configuration in the reader's language.

Saving the configuration yields English messages, many with values in them ("Line 3: ...",
pydantic's "String should have at most 11 characters"). A message the catalogue knows as it
is gets its translation; otherwise it is matched against `TEMPLATES` (the English sentences with
`{placeholders}`, as `str.format` writes them) and the translated template is filled with the
values read from the message. A message that matches nothing is shown unchanged.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

Gettext = Callable[[str], str]

TEMPLATES: tuple[str, ...] = (
    # domain/settings.py: plugin configuration lines and keys, inbound settings
    "Line {number}: write it as 'key = value'.",
    "Line {number}: leave out the [ ] placeholder brackets.",
    "'{key}' belongs to module {owners}, not {module}.",
    "'{key}' is not a setting of module {module}. Its keys are: none.",
    "'{key}' is not a setting of module {module}. Its keys are: {known}.",
    "Use one of: {options}.",
    "Keywords for '{language}' must be single words.",
    # domain/phone.py: the default country code
    "'{value}' is not a country calling code; write it like +31 (Netherlands) or +44.",
    # domain/sender.py
    "The sender number has {count} digits; a number may have at most 15.",
    "The sender '{sender}' has {count} characters; a name may have at most 11 "
    "(or use a phone number of up to 15 digits).",
    "The sender '{sender}' contains {characters}, which providers do not accept; "
    "use letters A-Z, digits, spaces and - + _ & . ,",
    "The sender '{sender}' is not a valid name.",
    "The sender '{sender}' has no letter; a name needs at least one letter A-Z "
    "(or use a phone number of up to 15 digits).",
    # domain/text.py: a reply's text
    "The text contains the control character {character} at position {number}; remove it. "
    "Only line breaks and tabs are allowed.",
    # providers/registry.py
    "There is no module '{name}'. Choose one of: {modules}.",
    # providers/intelecom.py: legacy true/false keys
    "{key} must be true or false, not '{raw}'.",
    # providers/email_gateway.py: address and text templates
    "The template is not valid ({reason}); write a literal brace as {{{{ or }}}}.",
    "Unknown placeholder {{{placeholder}}}; use only {names}.",
    "'{template}' does not make an e-mail address (e.g. {{number}}@gateway.example).",
    # conversations/, customers/, store/customers.py: refusals on the agents' screens
    "Status must be one of {options}.",
    "Priority must be one of {options}.",
    "The {field} cannot be empty.",
    "Only {allowed} can be changed, not {unknown}.",
    "{phone} belongs to another customer ({customer}).",
    "There is no group '{group}'.",
    "There is no user '{user}'.",
    "The name is {count} characters long; at most {max_length} are allowed.",
    "'{language}' is not a language code; use a code such as en, nl or nb-no.",
    "The numbers belong to different customers: {names}.",
    "{phone} is not a number of customer {customer}.",
    "{phone} is the customer's only number; add another first or delete the customer.",
    # outbox/accept.py and domain/phone.py: a message or reply that cannot be sent
    "The sender '{sender}' is not a mobile number that can be answered: {reason}",
    "The scheduled time is {when}; give a time from now up to 35 days ahead (up to 5 minutes "
    "in the past counts as now), or leave it out to send now.",
    "Priority {priority} does not exist; use 1 (fastest), 2 or 3.",
    "Validity {validity} is out of range; give more than 0 and at most 336 hours (14 days), "
    "or leave it out for the configured validity.",
    "The module {module} cannot send in this version of smsdesk; choose another module in the "
    "SMS configuration.",
    # pydantic, for the field types the settings models use
    "String should have at most {max_length} characters",
    "String should have at most {max_length} character",
    "String should have at least {min_length} characters",
    "String should have at least {min_length} character",
    "String should match pattern '{pattern}'",
    "Input should be greater than or equal to {ge}",
    "Input should be greater than {gt}",
    "Input should be less than or equal to {le}",
    "Input should be less than {lt}",
    "Input should be a multiple of {multiple_of}",
    "Input should be {expected}",
    "Input should be a valid dictionary or instance of {class_name}",
)

_NUMBER = r"-?(?:\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|inf)"
# What a placeholder may match when anything (`.+?`) would be ambiguous: numbers keep
# "greater than or equal to {ge}" from reading as "greater than {gt}", and {expected} is only
# pydantic's list of quoted choices, not any "Input should be ..." sentence.
_PLACEHOLDER_PATTERNS: dict[str, str] = {
    **dict.fromkeys(
        ("number", "count", "max_length", "min_length", "ge", "gt", "le", "lt", "multiple_of"),
        _NUMBER,
    ),
    "expected": r"'[^']*'(?:, '[^']*')*(?: or '[^']*')?",
    "class_name": r"\w+",
}
# Values that are lists joined by the English "or" ("intelecom or original_intelecom").
_OR_LISTS = frozenset({"owners", "expected"})
# Values that are English sentences of their own (Python's format-string errors).
_SENTENCES = frozenset({"reason"})


def _regex(template: str) -> re.Pattern[str]:
    """A regex matching the messages `template` produces, one named group per placeholder."""
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is not None:
            parts.append(f"(?P<{name}>{_PLACEHOLDER_PATTERNS.get(name, '.+?')})")
    return re.compile("".join(parts), re.DOTALL)


_COMPILED: tuple[tuple[str, re.Pattern[str]], ...] = tuple((t, _regex(t)) for t in TEMPLATES)


def _value(name: str, value: str, gettext: Gettext) -> str:
    """A value read from a message, with its English joining words translated."""
    if name in _OR_LISTS:
        return value.replace(" or ", f" {gettext('or')} ")
    if name in _SENTENCES:
        return gettext(value)
    return value


def match_template(message: str) -> tuple[str, dict[str, str]] | None:
    """The template `message` was made from and the values filled in, if any template fits."""
    for template, pattern in _COMPILED:
        found = pattern.fullmatch(message)
        if found is not None:
            return template, found.groupdict()
    return None


def translate_error(message: str, gettext: Gettext) -> str:
    """`message` in the language of `gettext`; unchanged when no translation is known."""
    if not message:
        return message
    translated = gettext(message)
    if translated != message:
        return translated
    matched = match_template(message)
    if matched is None:
        return message
    template, values = matched
    translated_template = gettext(template)
    if translated_template == template:
        return message
    filled = {name: _value(name, value, gettext) for name, value in values.items()}
    try:
        return translated_template.format_map(filled)
    except (KeyError, IndexError, ValueError):
        # A translation whose placeholders do not fit: the English is better than nothing.
        return message
