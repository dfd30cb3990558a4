from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import ContainerDep
from trooply.observability import QUEUE_DEPTH

router = APIRouter(tags=["operations"], route_class=StrictJsonRoute)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(container: ContainerDep) -> JSONResponse:
    checks = {"sql": container.db.ping, "index": lambda: container.index.ping(),
              "queue": container.dispatcher.ping, "model": lambda: container.encoder}
    results = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as error:  # readiness reports every failing dependency, never raises
            results[name] = f"unavailable: {error}"
    ready = all(value == "ok" for value in results.values())
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": results,
                         "models": container.runtime.describe()}, status_code=200 if ready else 503)


@router.get("/metrics")
def metrics(container: ContainerDep) -> Response:
    try:
        QUEUE_DEPTH.set(container.dispatcher.depth())
    except Exception:  # an unreachable broker must not take the metrics page down with it
        QUEUE_DEPTH.set(float("nan"))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
