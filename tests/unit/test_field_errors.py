"""Every message from saving a bad SMS configuration reads as Dutch, values intact."""

from __future__ import annotations

import re
import string
from gettext import NullTranslations
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdesk.domain.settings import (
    ConfigurationInvalid,
    FieldError,
    InboundSettings,
    ModuleLimits,
    SmsConfiguration,
)
from smsdesk.providers.registry import all_modules
from smsdesk.sms_configuration import validate_configuration
from smsdesk.web.ui.field_errors import TEMPLATES, match_template, translate_error
from smsdesk.web.ui.i18n import translations

# Words of the English messages that Dutch never uses; one left over means half a translation.
_ENGLISH = """the should must not or and write input string characters character digits belongs
    setting choose enter line field required valid which with without least
    most than equal greater less there its keys leave out brackets does make unknown
    placeholder template only use has have got unable parse number"""
ENGLISH_WORDS = frozenset(_ENGLISH.split())
# Values that are rewritten on the way (lists joined by "or", Python's own sentences).
REWRITTEN = frozenset({"owners", "expected", "reason"})

INVALID_CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "unknown country code": {"default_country_code": "+999"},
    "country code that is text": {"default_country_code": "Holland"},
    "sender too long": {"sender": "ThisIsAVeryLongSender"},
    "sender number too long": {"sender": "+1234567890123456"},
    "sender with accents": {"sender": "Café Ølé"},
    "sender without letters": {"sender": "12 -"},
    "empty sender": {"sender": "   "},
    "unknown module": {"module": "carrier_pigeon"},
    "bad plugin line": {"module": "twilio", "plugin_configuration": "just some words"},
    "placeholder brackets": {"module": "twilio", "plugin_configuration": "[key] = [value]"},
    "foreign plugin key": {"module": "twilio", "plugin_configuration": "intele_username = a"},
    "unknown plugin key": {"module": "twilio", "plugin_configuration": "colour = blue"},
    "key for a module without keys": {"module": "simulator", "plugin_configuration": "x = 1"},
    "SMS priority 7": {
        "module": "original_intelecom",
        "module_settings": {"original_intelecom": {"sms_priority": 7}},
    },
    "original intelecom fields": {
        "module": "original_intelecom",
        "module_settings": {
            "original_intelecom": {
                "service_id": "abc",
                "use_web_service": "perhaps",
                "sms_priority": "fast",
                "sms_endpoint": "X" * 41,
            }
        },
    },
    "original pswincom extra field": {
        "module": "original_pswincom",
        "module_settings": {"original_pswincom": {"colour": "blue", "username": 5}},
    },
    "legacy flag that is not true or false": {
        "module": "intelecom",
        "plugin_configuration": "intele_noStatusReport = perhaps",
    },
    "non-numeric general values": {
        "max_segments": "ten",
        "validity_hours": "two days",
        "reconcile_after_minutes": 1.5,
        "surprise": 1,
    },
    "out-of-range general values": {"max_segments": 0, "validity_hours": 0},
    "inbound settings": {
        "inbound": {
            "priority": "asap",
            "category": "",
            "sms_endpoint": "HELP ME",
            "opt_out_keywords": {"en": ["STOP NOW"]},
            "conversation_days": 999,
            "language": "x",
            "opt_in_confirmation": "y" * 481,
        }
    },
    "e-mail templates": {
        "module_settings": {
            "email": {
                "to_template": "{nope}@example.org",
                "subject_template": "{",
                "body_template": "{text",
                "intelecom_address": "gateway",
                "security": "ssl",
                "smtp_port": 0,
                "smtp_host": "mail/host",
                "from_address": "nobody",
            }
        }
    },
    "http module fields": {
        "module_settings": {
            "twilio": {
                "account_sid": "XX",
                "api_key_sid": "SK1",
                "messaging_service_sid": "MG1",
                "base_url": "ftp://example.org",
                "timeout": 0,
            },
            "linkmobility": {"delivery_report_gates": "gate;1"},
        }
    },
    "cm token and parts": {"module_settings": {"cm": {"product_token": "abc", "max_parts": 9}}},
    "smpp choices": {
        "module_settings": {"smpp": {"bind_mode": "x", "long_messages": "y", "port": "abc"}}
    },
    "kannel choices": {"module_settings": {"kannel": {"coding": "z", "smsc": "a b"}}},
    "simulator numbers": {
        "module_settings": {"simulator": {"seed": "x", "throttle_rate": 2, "report_retry": -1}}
    },
    "settings of an unknown module": {"module_settings": {"carrier_pigeon": {}}},
    "limits": {"limits": {"twilio": {"rate_limit": -1, "concurrency": "many"}}},
    "limits that are no mapping": {"limits": {"twilio": 3}},
}


def errors_for(submitted: dict[str, Any]) -> list[FieldError]:
    """The field errors validate_configuration reports for `submitted`."""
    with pytest.raises(ConfigurationInvalid) as info:
        validate_configuration(submitted, None)
    assert info.value.errors
    return info.value.errors


def assert_dutch(message: str) -> None:
    """`message` translates to Dutch: changed, no English words left, its values kept."""
    gettext = translations("nl").gettext
    dutch = translate_error(message, gettext)
    assert dutch != message, message
    matched = match_template(message)
    if gettext(message) != message or matched is None:
        wording = dutch
    else:
        template, values = matched
        for name, value in values.items():
            if name not in REWRITTEN:
                assert value in dutch, (message, dutch, name)
        wording = re.sub(r"\{\w+\}", " ", gettext(template))
    words = set(re.findall(r"[a-z]+", wording.lower()))
    assert not words & ENGLISH_WORDS, (message, dutch, words & ENGLISH_WORDS)


@pytest.mark.parametrize(
    "submitted", INVALID_CONFIGURATIONS.values(), ids=list(INVALID_CONFIGURATIONS)
)
def test_every_error_of_an_invalid_configuration_reads_as_dutch(submitted: dict[str, Any]) -> None:
    """Each message from saving a bad configuration has Dutch that keeps the user's values."""
    for error in errors_for(submitted):
        assert_dutch(error.message)


@pytest.mark.parametrize(
    "submitted", INVALID_CONFIGURATIONS.values(), ids=list(INVALID_CONFIGURATIONS)
)
def test_english_stays_unchanged(submitted: dict[str, Any]) -> None:
    """Without a catalogue (English) every message comes back exactly as it was."""
    gettext = NullTranslations().gettext
    for error in errors_for(submitted):
        assert translate_error(error.message, gettext) == error.message


@pytest.mark.parametrize(
    ("submitted", "english", "dutch"),
    [
        (
            INVALID_CONFIGURATIONS["SMS priority 7"],
            "Input should be less than or equal to 3",
            "Waarde moet kleiner dan of gelijk aan 3 zijn",
        ),
        (
            INVALID_CONFIGURATIONS["foreign plugin key"],
            "'intele_username' belongs to module intelecom or original_intelecom, not twilio.",
            "'intele_username' hoort bij module intelecom of original_intelecom, niet bij twilio.",
        ),
        (
            INVALID_CONFIGURATIONS["key for a module without keys"],
            "'x' is not a setting of module simulator. Its keys are: none.",
            "'x' is geen instelling van module simulator. Deze module heeft geen sleutels.",
        ),
        (
            INVALID_CONFIGURATIONS["bad plugin line"],
            "Line 1: write it as 'key = value'.",
            "Regel 1: schrijf deze als 'sleutel = waarde'.",
        ),
        (
            {"module_settings": {"email": {"subject_template": "{"}}},
            "The template is not valid (Single '{' encountered in format string); "
            "write a literal brace as {{ or }}.",
            "Het sjabloon is ongeldig (losse '{' in de tekst); "
            "schrijf een accolade die in de tekst moet staan als {{ of }}.",
        ),
    ],
)
def test_known_messages_translate_exactly(
    submitted: dict[str, Any], english: str, dutch: str
) -> None:
    """A few messages, word for word, including values rewritten inside them."""
    messages = [error.message for error in errors_for(submitted)]
    assert english in messages
    assert translate_error(english, translations("nl").gettext) == dutch


def _sample(name: str) -> str:
    """A value a template's placeholder may hold, for building a message from a template."""
    if name in ("number", "count", "max_length", "min_length", "ge", "gt", "le", "lt"):
        return "12"
    if name == "multiple_of":
        return "0.5"
    if name == "expected":
        return "'a', 'b' or 'c'"
    if name == "class_name":
        return "ModuleLimits"
    return "sample"


@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_is_recognised_and_translated(template: str) -> None:
    """A message made from a template is read back as that template and has Dutch."""
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    message = template.format_map({name: _sample(name) for name in names})
    matched = match_template(message)
    assert matched is not None and matched[0] == template
    assert translations("nl").gettext(template) != template
    assert_dutch(message)


def test_unknown_messages_pass_through() -> None:
    """A message no catalogue or template knows is shown as it is, not mangled."""
    gettext = translations("nl").gettext
    assert translate_error("Something nobody foresaw.", gettext) == "Something nobody foresaw."
    assert translate_error("", gettext) == ""


def test_broken_translation_falls_back_to_english() -> None:
    """A translated template whose placeholders do not fit gives the English, not a crash."""
    broken = {"Use one of: {options}.": "Gebruik {choices}."}
    message = "Use one of: low, high."
    assert translate_error(message, lambda text: broken.get(text, text)) == message


_PRINTABLE = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30
)


@settings(max_examples=150, deadline=None)
@given(sender=_PRINTABLE)
def test_any_refused_sender_reads_as_dutch(sender: str) -> None:
    """Whatever sender is refused, the reason is Dutch and names the sender as typed."""
    try:
        validate_configuration({"sender": sender}, None)
    except ConfigurationInvalid as exc:
        for error in exc.errors:
            assert_dutch(error.message)


@settings(max_examples=150, deadline=None)
@given(code=_PRINTABLE)
def test_any_refused_country_code_reads_as_dutch(code: str) -> None:
    """Whatever default country code is refused, the reason is Dutch and quotes it."""
    try:
        validate_configuration({"default_country_code": code}, None)
    except ConfigurationInvalid as exc:
        for error in exc.errors:
            assert_dutch(error.message)


_KEY = st.text(st.characters(codec="ascii", categories=("L", "N", "P")), min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(
    module=st.sampled_from(["twilio", "simulator", "original_intelecom", "pswincom"]),
    lines=st.lists(
        st.one_of(
            st.tuples(_KEY, st.text(max_size=10)).map(lambda kv: f"{kv[0]} = {kv[1]}"),
            st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=20),
        ),
        max_size=5,
    ),
)
def test_any_plugin_configuration_error_reads_as_dutch(module: str, lines: list[str]) -> None:
    """Bad lines and keys of the plugin configuration are reported in Dutch, keys intact."""
    try:
        validate_configuration({"module": module, "plugin_configuration": "\n".join(lines)}, None)
    except ConfigurationInvalid as exc:
        for error in exc.errors:
            assert_dutch(error.message)


WRONG_VALUES: list[Any] = ["not a number ☃", -(10**6), 10**9, "x" * 5000, [1], {"a": 1}, 1.5]


def _every_field_wrong(value: Any) -> list[dict[str, Any]]:
    """Submissions giving `value` to every field: general, inbound, limits, each module's."""
    general = {name: value for name in SmsConfiguration.model_fields if name != "module_settings"}
    inbound = dict.fromkeys(InboundSettings.model_fields, value)
    limits = {"twilio": dict.fromkeys(ModuleLimits.model_fields, value)}
    submissions = [general, {"inbound": inbound, "limits": limits}]
    for module in all_modules():
        fields = dict.fromkeys(module.settings_model.model_fields, value)
        submissions.append({"module_settings": {module.name: fields}})
    return submissions


@pytest.mark.parametrize("value", WRONG_VALUES, ids=repr)
def test_wrong_values_in_every_field_read_as_dutch(value: Any) -> None:
    """Whatever wrong value any field of any module gets, the reason given is Dutch."""
    checked = 0
    for submitted in _every_field_wrong(value):
        try:
            validate_configuration(submitted, None)
        except ConfigurationInvalid as exc:
            for error in exc.errors:
                assert_dutch(error.message)
                checked += 1
    assert checked > 20
