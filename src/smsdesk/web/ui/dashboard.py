"""The dashboard: what was sent, delivered and failed, how fast, and what is still queued."""

from __future__ import annotations

from dataclasses import dataclass

from babel.dates import format_date
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from smsdesk.domain.retention_settings import KINDS
from smsdesk.store.stats import DashboardStats, dashboard_stats
from smsdesk.store.users import WebSession
from smsdesk.web.auth import service_of
from smsdesk.web.ui.charts import Series, horizontal_bar_chart, stacked_bar_chart
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.render import render
from smsdesk.web.ui.session import page_language, page_session

router = APIRouter(include_in_schema=False)
PERIODS = (7, 14, 30, 90)


def _stats(request: Request, days: int) -> DashboardStats:
    service = service_of(request)
    with service.engine.connect() as conn:
        return dashboard_stats(conn, now=service.clock(), days=days)


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
    )
    latency = horizontal_bar_chart(
        gettext("Median time to delivery (seconds)"),
        list(stats.modules),
        [stats.median_delivery_by_module[m] for m in stats.modules],
        format_value=lambda v: f"{v:.1f}",
    )
    return {"daily": daily, "latency": latency}


@router.get("/dashboard")
async def dashboard(
    request: Request,
    days: int = Query(14),
    session: WebSession = Depends(page_session),
) -> Response:
    days = days if days in PERIODS else 14
    stats = await run_in_threadpool(_stats, request, days)
    retention = await run_in_threadpool(_retention, request)
    charts = _charts(stats, page_language(request, session))
    return render(
        request,
        "dashboard.html",
        session,
        stats=stats,
        days=days,
        periods=PERIODS,
        charts=charts,
        retention=retention,
    )
