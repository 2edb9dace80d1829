"""Where the mailing pages get their figures: `mailings.stats` (statistics with replies and
opt-outs, the CSV export, deliveries over time) where it exists, else the store's counts.

Kept apart so the pages do not care which one answers; the chart is left out rather than
drawn wrong when no deliveries over time can be read.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from smsdesk.service import Service
from smsdesk.store import mailings as store

Bucket = tuple[float, Mapping[str, int]]


def _stats() -> ModuleType | None:
    try:
        return importlib.import_module("smsdesk.mailings.stats")
    except ImportError:
        return None


def statistics(service: Service, mailing_id: str) -> dict[str, Any]:
    """Recipients by status and blocked by reason (see `web.ui.mailings_detail.figures`)."""
    stats = _stats()
    if stats is not None and hasattr(stats, "statistics"):
        return dict(stats.statistics(service, mailing_id))
    with service.engine.connect() as conn:
        return store.statistics(conn, mailing_id)


def export_csv(service: Service, mailing_id: str) -> Iterator[str] | None:
    """The recipients as CSV chunks, or None where the export does not exist."""
    stats = _stats()
    if stats is not None and hasattr(stats, "export_csv"):
        chunks: Iterator[str] = stats.export_csv(service, mailing_id)
        return chunks
    return None


def over_time(service: Service, mailing_id: str) -> list[Bucket]:
    """Stretches of time with the SMS sent, delivered and failed in each."""
    stats = _stats()
    found = getattr(stats, "delivery_over_time", None)
    if found is None:
        return []
    return [
        (float(b.start), {"sent": b.sent, "delivered": b.delivered, "failed": b.failed})
        for b in found(service, mailing_id)
    ]
