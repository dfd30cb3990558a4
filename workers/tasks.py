from trooply.catalog.queue import INGEST_TASK
from trooply.duplicates.service import SCAN_TASK
from workers.celery_app import POPULARITY_TASK, app, container


@app.task(name=INGEST_TASK)
def ingest_batch(tenant_id: str, job_id: str, product_ids: list[str]) -> dict[str, int]:
    outcome = container().run_ingest(tenant_id, job_id, product_ids)
    return {"indexed": outcome.indexed, "failed": outcome.failed}


@app.task(name=POPULARITY_TASK)
def refresh_popularity() -> int:
    return container().popularity.refresh_all()


@app.task(name=SCAN_TASK)
def scan_duplicates(tenant_id: str, scan_id: str) -> None:
    container().duplicates.run_scan(tenant_id, scan_id)
