"""Times as providers write them in answers and callbacks, read as Unix timestamps.

Providers stamp reports and inbound messages in many layouts: ISO 8601, HTTP dates, Unix
seconds, and local times without a zone (Norwegian or Swedish gateways, UTC elsewhere). Each
reader returns None for a time that is absent or unreadable: a report is still worth storing
without its time.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Central European standard time: the better guess for a Nordic gateway's clock when the
# machine has no time-zone database (winter time is what the clock shows most of the year).
CENTRAL_EUROPEAN = timezone(timedelta(hours=1))


@overload
def named_zone(name: str, fallback: tzinfo) -> tzinfo: ...
@overload
def named_zone(name: str, fallback: None = None) -> tzinfo | None: ...
def named_zone(name: str, fallback: tzinfo | None = None) -> tzinfo | None:
    """The IANA zone `name`, or `fallback` when the machine has no time-zone database."""
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return fallback


def local_time(value: str, *layouts: str, zone: tzinfo = UTC) -> float | None:
    """A zone-less time in the first of `layouts` it fits, read as a time in `zone`."""
    for layout in layouts:
        try:
            moment = datetime.strptime(value.strip(), layout)
        except ValueError:
            continue
        return moment.replace(tzinfo=zone).timestamp()
    return None


def iso_time(value: object, naive: tzinfo | None = UTC) -> float | None:
    """An ISO 8601 time; one without a zone is read in `naive` (None: the machine's own)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None and naive is not None:
        moment = moment.replace(tzinfo=naive)
    return moment.timestamp()


def http_date(value: str) -> float | None:
    """An RFC 2822 / HTTP date (e.g. 'Wed, 21 Oct 2015 07:28:00 GMT')."""
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def unix_seconds(value: str) -> float | None:
    """Whole seconds since the epoch, written as digits."""
    return float(value) if value.strip().isdigit() else None
