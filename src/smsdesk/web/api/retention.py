"""Retention: what the nightly purge keeps and deletes, /api/v1/retention."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from smsdesk.domain.times import iso
from smsdesk.lifecycle.retention import LeaseHeld, RetentionJob, next_run
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.auth import admin_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1", tags=["retention"])


def _last_run(result: dict[str, Any] | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "started_at": iso(result.get("started_at")),
        "finished_at": iso(result.get("finished_at")),
        "complete": result.get("complete", True),
        "purged": result.get("purged", {}),
        "housekeeping": result.get("housekeeping", {}),
        "total": result.get("total", 0),
    }


def overview(job: RetentionJob) -> dict[str, Any]:
    """Settings, last run, next run and what the next run will purge."""
    settings = job.settings()
    now = job.host.clock()
    state = job.state()
    return {
        "settings": settings.model_dump(),
        "last_run": _last_run(state.last_result),
        "running": (
            {"owner": state.owner, "lease_until": iso(state.lease_until)}
            if state.running(now)
            else None
        ),
        "next_run": iso(next_run(settings, now)),
        "next_run_purges": job.forecast(),
    }


@router.get("/retention", summary="Retention settings, the last purge and the next one")
async def get_retention(request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    """Days kept per kind (0: forever), the last run's counts, when the next nightly run is
    and how many rows of each kind it will purge (counted at most every five minutes)."""
    return Json(await run_in_threadpool(overview, service_of(request).retention))


@router.post("/retention/run", summary="Purge now", status_code=202)
async def run_retention(request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    """Start the purge in this process now; 409 if another process is purging. Its counts
    appear as `last_run` of GET /api/v1/retention once it has finished."""
    try:
        await service_of(request).retention.start_now()
    except LeaseHeld as held:
        raise ApiError(
            409,
            "retention_running",
            f"The purge is already running in {held.owner}; try again when it has finished.",
        ) from None
    return Json({"started": True}, 202)
