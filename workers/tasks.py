"""Celery's names for the container's registered tasks: each definition runs the function registered under the
same name (trooply/container.py), in this worker's container. A new task is one registration there and one
definition here; the names are the contract with messages already queued, so they never change."""

from trooply.admin.purge import PURGE_TASK
from trooply.catalog.ingest import INGEST_TASK
from trooply.catalog.queue import ENTER_TASK, TURN_TASK, CeleryDispatcher
from trooply.colour_refresh.service import REFRESH_TASK
from trooply.duplicates.service import SCAN_TASK
from trooply.feedback.retention import RETENTION_TASK
from trooply.feeds.service import DUE_TASK, SYNC_TASK
from trooply.model_migration.service import DROP_SPACE_TASK, REENCODE_TASK
from workers.celery_app import POPULARITY_TASK, app, container


def _celery_dispatcher() -> CeleryDispatcher:
    dispatcher = container().dispatcher
    assert isinstance(dispatcher, CeleryDispatcher), "a Celery worker needs TROOPLY_REDIS_URL"
    return dispatcher


@app.task(name=TURN_TASK, bind=True)
def take_turn(self, queue: str) -> None:
    """One turn of the tenants' round robin (trooply/catalog/fair_share.py): what most messages are now."""
    _celery_dispatcher().take_turn(queue, self.request.id)


@app.task(name=ENTER_TASK)
def enter_line(name: str, args: list) -> None:
    """A delayed task (a retry) whose time has come: it joins its tenant's line."""
    _celery_dispatcher().enter(name, args)


# Messages sent by name, before the tenants' lines existed, still run directly.
@app.task(name=INGEST_TASK)
def ingest_batch(tenant_id: str, job_id: str, product_ids: list[str]) -> None:
    container().dispatcher.run(INGEST_TASK, [tenant_id, job_id, product_ids])


@app.task(name=SCAN_TASK)
def scan_duplicates(tenant_id: str, scan_id: str) -> None:
    container().dispatcher.run(SCAN_TASK, [tenant_id, scan_id])


@app.task(name=PURGE_TASK)
def purge_tenant(tenant_id: str) -> None:
    container().dispatcher.run(PURGE_TASK, [tenant_id])


@app.task(name=REENCODE_TASK)
def reencode_tenant(tenant_id: str, target_space: str) -> None:
    container().dispatcher.run(REENCODE_TASK, [tenant_id, target_space])


@app.task(name=DROP_SPACE_TASK)
def drop_model_space(space_name: str, dim: int) -> None:
    container().dispatcher.run(DROP_SPACE_TASK, [space_name, dim])


@app.task(name=REFRESH_TASK)
def refresh_colours(tenant_id: str) -> None:
    container().dispatcher.run(REFRESH_TASK, [tenant_id])


@app.task(name=POPULARITY_TASK)
def refresh_popularity() -> int:
    """Sent by `trooply beat`; embedded, a thread of `trooply serve` runs the same refresh."""
    return container().popularity.refresh_all()


@app.task(name=SYNC_TASK)
def sync_feed(tenant_id: str, sync_id: str) -> None:
    container().dispatcher.run(SYNC_TASK, [tenant_id, sync_id])


@app.task(name=DUE_TASK)
def sync_due_feeds() -> int:
    """Sent by `trooply beat`; embedded, a thread of `trooply serve` queues the due syncs the same way."""
    return container().feeds.sync_due()


@app.task(name=RETENTION_TASK)
def sweep_analytics_retention() -> int:
    """Sent by `trooply beat`; embedded, a thread of `trooply serve` runs the same sweep."""
    return container().retention.run()
