from fastapi import APIRouter
from fastapi.responses import JSONResponse

from trooply.api.deps import ContainerDep

router = APIRouter(tags=["operations"])


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
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": results},
                        status_code=200 if ready else 503)
