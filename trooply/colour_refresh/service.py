"""The colour refresh: bringing every tenant's stored colour signal up to the current version (palettes named
by the colour-naming model, replacing the 64-bin histograms), in the background, with progress.

Begun by `trooply migrate` and at every embedded `trooply serve` start (the tenants whose colour is older than
COLOUR_VERSION; a no-op once current), or by the admin API (also to retry failed images, with `restart`).
Embedded, `trooply serve` runs it and resumes it at start; with Celery, the workers run what `trooply migrate`
sends (when Redis answers), begin and resume it when they start, and run what the admin call sends. A tenant sent
twice runs once: the second run's cursor update fails after one page, and it stops.
"""

import logging

from trooply.colour_refresh.repository import ColourRefreshMaintenance, ColourRefreshRepository
from trooply.colour_refresh.schemas import ColourRefreshFailureOut, ColourRefreshOut, TenantColourRefreshOut
from trooply.colour_refresh.task import ColourRefresher
from trooply.db import Database
from trooply.tasks.names import COLOUR_REFRESH_TASK
from trooply.tasks.queue import Dispatcher

log = logging.getLogger(__name__)
COLOUR_VERSION = 2  # 1: the 64-bin histogram; 2: palettes (trooply/vision/colour.py)
FAILURES_SHOWN = 100


class ColourRefreshService:
    def __init__(self, db: Database, dispatcher: Dispatcher | None) -> None:
        self.db = db
        self.dispatcher = dispatcher  # None in a CLI without Celery: the running server resumes the work

    def start(self, restart: bool = False, send: bool = True) -> ColourRefreshOut:
        """Begins the refresh for every tenant whose colour is older (every tenant with `restart`), and queues
        every tenant not done (those begun and any left unfinished) unless `send` is False."""
        with self.db.session() as session:
            begun = ColourRefreshMaintenance(session).begin(COLOUR_VERSION, restart)
        if send:
            self.resume_unfinished()
        return self.status(begun)

    def status(self, started: list[str] | None = None) -> ColourRefreshOut:
        with self.db.session() as session:
            rows = [TenantColourRefreshOut(
                tenant_id=row.tenant_id, status=row.status, done=row.done, failed=row.failed, total=row.total,
                failures=[ColourRefreshFailureOut(product_id=f.product_id, code=f.code, message=f.message,
                                                  attempts=f.attempts)
                          for f in ColourRefreshRepository(session, row.tenant_id).failures(FAILURES_SHOWN)])
                for row in ColourRefreshMaintenance(session).rows()]
        return ColourRefreshOut(version=COLOUR_VERSION, started=started or [], done=sum(r.done for r in rows),
                                failed=sum(r.failed for r in rows), total=sum(r.total for r in rows), tenants=rows)

    def resume_unfinished(self) -> int:
        """Queues again every tenant not done (a restart, or work the CLI began in another process)."""
        with self.db.session() as session:
            unfinished = ColourRefreshMaintenance(session).unfinished()
        self._send(unfinished)
        return len(unfinished)

    def run(self, refresher: ColourRefresher, tenant_id: str) -> None:
        if refresher.run(tenant_id):
            log.info("tenant %s: stored colours are current", tenant_id)

    def _send(self, tenant_ids: list[str]) -> None:
        if self.dispatcher is None:
            return
        for tenant_id in tenant_ids:
            self.dispatcher.send(COLOUR_REFRESH_TASK, [tenant_id])
