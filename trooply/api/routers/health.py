from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import QueueDep, ReadinessDep
from trooply.observability import QUEUE_DEPTH

router = APIRouter(tags=["operations"], route_class=StrictJsonRoute)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(readiness: ReadinessDep) -> JSONResponse:
    results = {}
    for name, check in readiness.checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as error:  # readiness reports every failing dependency, never raises
            results[name] = f"unavailable: {error}"
    ready = all(value == "ok" for value in results.values())
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": results,
                         "models": readiness.models()}, status_code=200 if ready else 503)


@router.get("/metrics")
def metrics(queue: QueueDep) -> Response:
    try:
        QUEUE_DEPTH.set(queue.depth())
    except Exception:  # an unreachable broker must not take the metrics page down with it
        QUEUE_DEPTH.set(float("nan"))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
