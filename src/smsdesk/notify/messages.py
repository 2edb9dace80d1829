"""The words of a notification, in the recipient's language.

The translations are the web interface's (`web/locale/<lang>/LC_MESSAGES/notify.po`), read
here without the web package, which the pipeline that queues notifications must not load.
The link to the request is stored as a path on a line of its own (`/requests/<id>`); the sender
puts the installation's public address in front of it, which only the running process knows.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from babel.messages.pofile import read_po

EVENTS = ("request.new_in_group", "request.assigned", "request.customer_answered")
CHANNELS = ("email", "sms")
LOCALE_DIR = Path(__file__).resolve().parent.parent / "web" / "locale"
_LINK = re.compile(r"^(/requests/[0-9A-Za-z]+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Text:
    subject: str
    body: str


@functools.cache
def _catalogue(language: str) -> dict[str, str]:
    path = LOCALE_DIR / language / "LC_MESSAGES" / "notify.po"
    if language == "en" or not path.is_file():
        return {}
    with path.open("rb") as handle:
        catalogue = read_po(handle, locale=language)
    return {str(m.id): str(m.string) for m in catalogue if m.id and m.string}


def gettext(language: str) -> Callable[[str], str]:
    """The translation of a notification's text into `language` (the text itself if none)."""
    table = _catalogue(language)
    return lambda text: table.get(text, text)


def request_path(request_id: str) -> str:
    return f"/requests/{request_id}"


def render(event: str, language: str, title: str, group: str | None, request_id: str) -> Text:
    """The subject and body of one event's notification, in `language` (English if unknown)."""
    _ = gettext(language)
    title = " ".join(title.split())  # one line: it is also an e-mail's subject
    group = " ".join((group or "").split())
    if event == "request.new_in_group":
        subject = _("New request in {group}: {title}").format(group=group or "", title=title)
        lead = _("A new request arrived in the group {group}.").format(group=group or "")
    elif event == "request.assigned":
        subject = _("Request assigned to you: {title}").format(title=title)
        lead = _("The request “{title}” is now yours.").format(title=title)
    elif event == "request.customer_answered":
        subject = _("The customer answered: {title}").format(title=title)
        lead = _("The customer sent a new SMS in your request “{title}”.").format(title=title)
    else:
        raise ValueError(f"unknown notification event {event!r}")
    body = "\n".join([lead, "", _("Open the request:"), request_path(request_id), ""])
    return Text(subject, body)


def sms_text(text: Text) -> str:
    """What an SMS notification says: the subject and the link."""
    link = _LINK.search(text.body)
    return f"{text.subject}\n{link.group(1)}" if link else text.subject


def with_links(text: str, public_url: str) -> str:
    """`text` with each request path made a full address on `public_url`."""
    base = public_url.rstrip("/")
    return _LINK.sub(lambda m: base + m.group(1), text)
