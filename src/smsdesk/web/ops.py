"""Operations endpoints: /healthz (no key) and /metrics (Prometheus, key required).

Both show this process's part in the cluster: its role (api, worker or both), the
once-per-cluster jobs it leads, the messages it holds leased, and the shared rate limiter.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from smsdesk import metrics
from smsdesk.store.apikeys import ApiKey
from smsdesk.store.health import check_database
from smsdesk.store.rate_limits import limiter_state
from smsdesk.web.auth import api_key, service_of
from smsdesk.web.jsonresponse import Json

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness and database reachability")
def healthz(request: Request) -> Json:
    service = service_of(request)
    try:
        check_database(service.engine)
    except Exception as exc:
        return Json({"status": "error", "database": str(exc)}, 503)
    return Json(
        {
            "status": "ok",
            "database": "ok",
            "dispatcher": service.dispatcher is not None,
            **service.cluster_state(),
            "limiter": limiter_state(service.engine, service.clock()),
        }
    )


@router.get("/metrics", summary="Prometheus metrics")
def prometheus(request: Request, _: ApiKey = Depends(api_key)) -> Response:
    registry = request.app.state.metrics
    return Response(metrics.render(registry), media_type="text/plain; version=0.0.4")
