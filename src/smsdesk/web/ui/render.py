"""Rendering pages: one Jinja2 environment (autoescaped), translated per request.

Templates call `_()` / `gettext()` / `ngettext()`, and `{% trans %}` blocks; the callables come
with each render from the page's language, so one environment serves every language.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date
from babel.numbers import format_decimal
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from smsdesk.store.users import WebSession
from smsdesk.web.ui.i18n import LANGUAGES, translations
from smsdesk.web.ui.session import CSRF_FIELD, page_language
from smsdesk.web.ui.timeline_words import (
    code_meaning,
    detail_text,
    failover_text,
    module_title,
    request_title,
)

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

# Content-Security-Policy: every script and style comes from this site; nothing is framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

environment = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.install_null_translations()  # type: ignore[attr-defined]


# The cookie a small script in app.js sets from the browser's own time zone; it is used
# until the user chooses one under My settings.
TIME_ZONE_COOKIE = "smsdesk_tz"


def _zone(name: str | None) -> tzinfo | None:
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def page_time_zone(request: Request, session: WebSession | None) -> tzinfo:
    """The zone times are shown in: the user's setting, else the browser's, else UTC."""
    chosen = _zone(session.user.time_zone) if session else None
    return chosen or _zone(request.cookies.get(TIME_ZONE_COOKIE)) or UTC


def format_moment(ts: float, language: str, zone: tzinfo) -> str:
    """A moment in the locale's date format, 24-hour time and the zone's abbreviation:
    "Dec 6, 2026 14:05:09 CET", "6 dec 2026 14:05:09 CET"."""
    moment = datetime.fromtimestamp(ts, UTC).astimezone(zone)
    day = format_date(moment.date(), "medium", locale=language)
    return f"{day} {moment:%H:%M:%S} {moment.tzname() or 'UTC'}"


def _formatters(language: str, zone: tzinfo = UTC) -> dict[str, Any]:
    def when(ts: float | None) -> str:
        if ts is None:
            return ""
        return format_moment(ts, language, zone)

    def number(value: float | int | None, digits: int = 0) -> str:
        if value is None:
            return "\u2013"  # en dash: no figure
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=language)

    return {"when": when, "number": number}


def page_context(request: Request, session: WebSession | None) -> dict[str, Any]:
    language = page_language(request, session)
    zone = page_time_zone(request, session)
    t = translations(language)
    return {
        "request": request,
        "session": session,
        "user": session.user if session else None,
        "csrf_field": CSRF_FIELD,
        "csrf_token": session.csrf_token if session else "",
        "lang": language,
        "languages": LANGUAGES,
        "gettext": t.gettext,
        "ngettext": t.ngettext,
        "_": t.gettext,
        "path": request.url.path,
        "time_zone": zone,
        "detail_text": lambda detail: detail_text(detail, t.gettext),
        "code_meaning": lambda code: code_meaning(code, t.gettext),
        "failover_text": lambda left, to: failover_text(left, to, t.gettext),
        "module_title": lambda name: module_title(name, t.gettext),
        "request_title": lambda title: request_title(title, t.gettext),
        **_formatters(language, zone),
    }


def render(
    request: Request,
    template: str,
    session: WebSession | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    page = environment.get_template(template).render(**page_context(request, session), **context)
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)
