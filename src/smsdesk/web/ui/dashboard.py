"""The dashboard: what was sent, delivered and failed, how fast, and what is still queued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_decimal
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from smsdesk.domain.retention_settings import KINDS
from smsdesk.providers.registry import UnknownModule, get_module
from smsdesk.store.stats import DashboardStats, dashboard_stats
from smsdesk.store.users import WebSession
from smsdesk.web.auth import service_of
from smsdesk.web.ui.charts import (
    Series,
    compact_number,
    horizontal_bar_chart,
    stacked_bar_chart,
)
from smsdesk.web.ui.connections import figures as connection_figures
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.render import page_time_zone, render
from smsdesk.web.ui.session import page_language, page_session
from smsdesk.web.ui.spend import nearly_full

router = APIRouter(include_in_schema=False)
PERIODS = (7, 14, 30, 90)


def _stats(request: Request, days: int, zone: tzinfo) -> DashboardStats:
    """The figures per calendar day of the user's time zone."""
    service = service_of(request)
    with service.engine.connect() as conn:
        return dashboard_stats(
            conn, now=service.clock(), days=days, tz=zone if isinstance(zone, ZoneInfo) else "UTC"
        )


@dataclass(frozen=True, slots=True)
class RetentionSummary:
    """What the nightly purge will delete (kinds with something to purge) and last did."""

    hour: int
    upcoming: list[tuple[str, int]]
    last_finished: float | None
    last_purged: list[tuple[str, int]]


def _retention(request: Request) -> RetentionSummary:
    job = service_of(request).retention
    forecast = job.forecast()
    last = job.state().last_result or {}
    purged = last.get("purged", {})
    return RetentionSummary(
        hour=job.settings().hour,
        upcoming=[(kind, forecast[kind]) for kind in KINDS if forecast.get(kind)],
        last_finished=last.get("finished_at"),
        last_purged=[(kind, purged[kind]) for kind in KINDS if purged.get(kind)],
    )


def _charts(stats: DashboardStats, language: str) -> dict[str, Markup]:
    gettext = translations(language).gettext
    labels = [format_date(d.day, "d MMM", locale=language) for d in stats.days]
    daily = stacked_bar_chart(
        gettext("Messages per day"),
        labels,
        [
            Series("delivered", gettext("Delivered"), [d.counts.delivered for d in stats.days]),
            Series(
                "sent",
                gettext("Waiting for a delivery report"),
                [d.counts.awaiting_report for d in stats.days],
            ),
            Series("failed", gettext("Failed"), [d.counts.failed for d in stats.days]),
        ],
        format_value=compact_number(language),
    )
    titles = module_titles(stats.modules, language)
    latency = horizontal_bar_chart(
        gettext("Median time to delivery (seconds)"),
        [titles[m] for m in stats.modules],
        [stats.median_delivery_by_module[m] for m in stats.modules],
        format_value=lambda v: format_decimal(v, "#,##0.0", locale=language),
    )
    return {"daily": daily, "latency": latency}


def module_titles(modules: tuple[str, ...], language: str) -> dict[str, str]:
    """Each module's title in the page's language (the name itself for a module now gone)."""
    gettext = translations(language).gettext
    titles = {}
    for name in modules:
        try:
            titles[name] = gettext(get_module(name).title)
        except UnknownModule:
            titles[name] = name
    return titles


@router.get("/dashboard")
async def dashboard(
    request: Request,
    days: int = Query(14),
    session: WebSession = Depends(page_session),
) -> Response:
    days = days if days in PERIODS else 14
    stats = await run_in_threadpool(_stats, request, days, page_time_zone(request, session))
    retention = await run_in_threadpool(_retention, request)
    connections = await run_in_threadpool(connection_figures, service_of(request))
    spend_alerts = await run_in_threadpool(nearly_full, service_of(request))
    language = page_language(request, session)
    charts = _charts(stats, language)
    return render(
        request,
        "dashboard.html",
        session,
        stats=stats,
        days=days,
        periods=PERIODS,
        charts=charts,
        retention=retention,
        titles=module_titles(stats.modules, language),
        connections=connections,
        spend_alerts=spend_alerts,
    )
