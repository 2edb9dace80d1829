"""Every word the web interface shows has a Dutch translation: no English on a Dutch page."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir

from smsdesk.web.ui.i18n import catalogue

WEB = Path(__file__).resolve().parents[2] / "src" / "smsdesk" / "web"
_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


def interface_messages() -> dict[str, str]:
    """msgid -> where it is used, from the templates and the interface's Python code."""
    found: dict[str, str] = {}
    method_map = [("templates/**.html", "jinja2.ext:babel_extract"), ("ui/**.py", "python")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
    for filename, line, message, _comments, _context in extract_from_dir(
        str(WEB), method_map=method_map, options_map=options
    ):
        msgid = message[0] if isinstance(message, tuple) else message  # plurals: by singular
        if msgid:
            found.setdefault(msgid, f"{filename}:{line}")
    return found


def test_the_interface_has_words_to_translate() -> None:
    messages = interface_messages()
    assert "Log in" in messages and "Dashboard" in messages


def test_every_interface_message_is_translated_to_dutch() -> None:
    dutch = catalogue("nl")
    missing = [
        f"{where}: {msgid!r}"
        for msgid, where in sorted(interface_messages().items(), key=lambda item: item[1])
        if not (entry := dutch.get(msgid))
        or not all(entry.string if isinstance(entry.string, tuple) else (entry.string,))
    ]
    assert not missing, "no Dutch for:\n" + "\n".join(missing)


def test_dutch_keeps_every_placeholder() -> None:
    dutch = catalogue("nl")
    for msgid in interface_messages():
        entry = dutch.get(msgid)
        if entry and entry.string:
            strings = entry.string if isinstance(entry.string, tuple) else (str(entry.string),)
            for text in strings:
                assert set(_PLACEHOLDER.findall(text)) <= set(_PLACEHOLDER.findall(msgid)), msgid
