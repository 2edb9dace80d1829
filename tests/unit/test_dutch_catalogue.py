"""The Dutch catalogue covers the SMS configuration screen and stays well-formed."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from pydantic import BaseModel

from smsdesk.domain.settings import InboundSettings, ModuleLimits, SmsConfiguration
from smsdesk.providers.intelecom import OriginalIntelecomSettings
from smsdesk.providers.pswincom import OriginalPsWinComSettings
from smsdesk.providers.registry import all_modules
from smsdesk.web.ui.i18n import LOCALE_DIR, catalogue, translations

PO_FILES = sorted((LOCALE_DIR / "nl" / "LC_MESSAGES").glob("*.po"))
PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")

# The labels of the Dutch help page of the original product's SMS configuration.
ORIGINAL_INTELECOM_LABELS = {
    "sms_endpoint": "SMS-eindpunt",
    "use_web_service": "Webservice gebruiken",
    "delivery_report": "Afleverrapport",
    "service_id": "Service-ID",
    "username": "Gebruikersnaam",
    "password": "Wachtwoord",
    "sms_priority": "SMS-prioriteit",
}
ORIGINAL_PSWINCOM_LABELS = {
    "sms_endpoint": "SMS-eindpunt",
    "username": "Gebruikersnaam",
    "password": "Wachtwoord",
}
GENERAL_LABELS = {
    "module": "Module",
    "default_country_code": "Standaard landcode",
    "sender": "Afzender",
    "plugin_configuration": "Pluginconfiguratie",
}
SCREEN_WORDS = {
    "SMS configuration": "SMS-configuratie",
    "General preferences": "Algemene voorkeuren",
    "Preferences": "Voorkeuren",
    "Test": "Test",
}


def _schema_texts(model: type[BaseModel]) -> list[str]:
    """Titles, descriptions and choices of every property in a model's JSON schema."""
    schema = model.model_json_schema()
    texts: list[str] = []
    for part in [schema, *schema.get("$defs", {}).values()]:
        properties: dict[str, dict[str, Any]] = part.get("properties", {})
        for prop in properties.values():
            texts += [prop[key] for key in ("title", "description") if prop.get(key)]
            texts += [str(choice) for choice in prop.get("enum", [])]
        texts += [str(choice) for choice in part.get("enum", [])]
    return texts


def screen_texts() -> list[str]:
    """Every English text the SMS configuration screen takes from the settings models."""
    texts: list[str] = []
    for model in (SmsConfiguration, InboundSettings, ModuleLimits):
        texts += _schema_texts(model)
    for module in all_modules():
        texts += [module.title, module.description, *_schema_texts(module.settings_model)]
    return sorted(set(texts))


def _msgids(path: Path) -> list[tuple[str | None, str]]:
    """(context, msgid) of every entry of a .po file, read line by line so repeats show."""
    entries: list[tuple[str | None, str]] = []
    context: str | None = None
    current: str | None = None
    parts: list[str] = []

    def close() -> None:
        nonlocal context
        if current == "msgid":
            entries.append((context, "".join(parts)))
            context = None

    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith('"'):
            if current in ("msgid", "msgctxt"):
                parts.append(ast.literal_eval(line))
            continue
        keyword, _, rest = line.partition(" ")
        if current == "msgctxt" and keyword != "msgctxt":
            context = "".join(parts)
        close()
        current, parts = keyword, [ast.literal_eval(rest)] if rest.startswith('"') else []
    close()
    return [entry for entry in entries if entry[1]]


@pytest.mark.parametrize("text", screen_texts())
def test_every_screen_text_has_dutch(text: str) -> None:
    """Each module and field title, description and choice of the screen has Dutch."""
    message = catalogue("nl").get(text)
    assert message is not None, text
    assert isinstance(message.string, str) and message.string.strip(), text


@pytest.mark.parametrize(
    ("model", "labels"),
    [
        (OriginalIntelecomSettings, ORIGINAL_INTELECOM_LABELS),
        (OriginalPsWinComSettings, ORIGINAL_PSWINCOM_LABELS),
        (SmsConfiguration, GENERAL_LABELS),
    ],
)
def test_original_fields_use_the_help_page_labels(
    model: type[BaseModel], labels: dict[str, str]
) -> None:
    """The original products' fields are labelled exactly as the Dutch help page says."""
    gettext = translations("nl").gettext
    titles = {name: info.title for name, info in model.model_fields.items()}
    assert {name: gettext(titles[name] or "") for name in labels} == labels


def test_screen_words_follow_the_help_page() -> None:
    """The screen's own words are the help page's: SMS-configuratie, Algemene voorkeuren."""
    gettext = translations("nl").gettext
    assert {english: gettext(english) for english in SCREEN_WORDS} == SCREEN_WORDS


def test_original_intelecom_descriptions_are_the_help_page_sentences() -> None:
    """The Original Intelecom fields explain themselves with the help page's own sentences."""
    gettext = translations("nl").gettext
    fields = OriginalIntelecomSettings.model_fields
    described = {name: gettext(info.description or "") for name, info in fields.items()}
    assert described["use_web_service"].startswith("Indien ingeschakeld, worden SMS'en")
    assert "Dit betekent dat u kunt controleren" in described["delivery_report"]
    assert described["username"].startswith("Hier voert u de gebruikersnaam in")
    assert described["sms_priority"].startswith("Hier voert u 1, 2 of 3 in.")


def test_no_msgid_is_defined_twice() -> None:
    """A msgid lives in one .po file, once, so no file silently overrides another."""
    seen: dict[tuple[str | None, str], str] = {}
    for path in PO_FILES:
        for entry in _msgids(path):
            assert entry not in seen, f"{entry[1]!r} in {path.name} and {seen[entry]}"
            seen[entry] = path.name
    assert len(seen) > 300


def _texts(value: object) -> list[str]:
    """The singular and plural forms of a msgid or msgstr, as a list."""
    forms = value if isinstance(value, (tuple, list)) else (value,)
    return [str(form) for form in forms if form]


@pytest.mark.parametrize("path", PO_FILES, ids=lambda path: path.name)
def test_po_file_parses_and_keeps_placeholders(path: Path) -> None:
    """Each .po file parses, declares UTF-8 and Dutch, and keeps every {placeholder}."""
    with path.open("rb") as handle:
        catalog = read_po(handle, locale="nl", abort_invalid=True)
    assert catalog.charset == "utf-8"
    assert catalog.locale is not None and str(catalog.locale) == "nl"
    for message in catalog:
        if not message.id:
            continue
        wanted = {name for text in _texts(message.id) for name in PLACEHOLDER.findall(text)}
        for text in _texts(message.string):
            assert set(PLACEHOLDER.findall(text)) == wanted, message.id


def test_merged_catalogue_compiles() -> None:
    """All Dutch files together compile into the gettext object the web UI uses."""
    assert translations("nl").gettext("SMS priority") == "SMS-prioriteit"
