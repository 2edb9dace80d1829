"""A mailing's delivery over time, for its chart: (bucket start, counts by status) pairs.

The figures come from `mailings.stats.delivery_over_time` where that exists; without it the
page shows no chart rather than a wrong one.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from smsdesk.service import Service

Bucket = tuple[float, Mapping[str, int]]


def over_time(service: Service, mailing_id: str) -> list[Bucket]:
    """The buckets of the mailing's messages by the time their status was reached."""
    try:
        stats: Any = importlib.import_module("smsdesk.mailings.stats")
    except ImportError:
        return []
    found = getattr(stats, "delivery_over_time", None)
    if found is None:
        return []
    return [(float(start), dict(counts)) for start, counts in found(service, mailing_id)]
