"""Languages of the web interface: Babel catalogues read from `web/locale/<lang>/LC_MESSAGES`.

Every `.po` file of a language is merged into one catalogue, so each screen keeps its own file.
The catalogues are compiled in memory when first used: no compiled `.mo` files to keep in step.
"""

from __future__ import annotations

import functools
import io
from gettext import GNUTranslations, NullTranslations
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DEFAULT_LANGUAGE = "en"
LANGUAGES: dict[str, str] = {"en": "English", "nl": "Nederlands"}


def catalogue(language: str) -> Catalog:
    """Every message of one language, from all of its `.po` files."""
    merged = Catalog(locale=language)
    for path in sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            part = read_po(handle, locale=language)
        for message in part:
            if message.id and message.string:
                merged.add(message.id, message.string, context=message.context)
    return merged


@functools.cache
def translations(language: str) -> NullTranslations:
    """The gettext object for a language; English (the source language) needs none."""
    if language not in LANGUAGES or language == DEFAULT_LANGUAGE:
        return NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, catalogue(language))
    buffer.seek(0)
    return GNUTranslations(buffer)


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for an Accept-Language header (English if none fits)."""
    ranked: list[tuple[float, str]] = []
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, tag.strip().lower().split("-")[0]))
    for _, language in sorted(ranked, key=lambda item: -item[0]):
        if language in LANGUAGES:
            return language
    return DEFAULT_LANGUAGE
