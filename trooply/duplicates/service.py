"""Catalogue duplicates: at once for catalogues up to `duplicates_sync_max_products`, as a background scan
(same result shape) for any size. Scans are a background task: on the Celery workers that consume the background
queue, or embedded on the in-process queue's scan thread."""

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future

from trooply.config import Settings
from trooply.db import Database, utcnow
from trooply.duplicates.finder import DuplicateReport, find_duplicates
from trooply.duplicates.models import COMPLETED, FAILED, PENDING, RUNNING, UNFINISHED, DuplicateScan
from trooply.duplicates.repository import DuplicateScanMaintenance, DuplicateScanRepository
from trooply.duplicates.schemas import DuplicateScanOut, DuplicatesOut, page_of
from trooply.errors import InvalidRequest, NotFound, TrooplyError
from trooply.scheduling import TenantBoundedPool
from trooply.spaces.live import LiveSpaces
from trooply.tenancy.repository import TenantRepository
from trooply.tenancy.service import live_tenant

log = logging.getLogger(__name__)
KEEP_SCANS = 10  # finished scans kept per tenant, newest first
PROGRESS_EVERY_S = 2.0


class ScanInterrupted(Exception):
    """The process is stopping: the scan stays unfinished and is resumed at the next start."""


class DuplicateService:
    def __init__(self, db: Database, spaces: LiveSpaces, settings: Settings,
                 dispatch: Callable[[str, str], None]) -> None:
        self.db = db
        self.spaces = spaces
        self.settings = settings
        self._dispatch = dispatch  # queues a scan's task (trooply.tasks.queue), which calls run_scan
        self._stopping = False
        discovery = settings.discovery
        self._sync = TenantBoundedPool(discovery.duplicates_sync_concurrency, discovery.duplicates_sync_per_tenant,
                                       "duplicates", "GET /v1/duplicates calls")

    def report(self, tenant_id: str, threshold: float,
               progress: Callable[[int], None] | None = None) -> DuplicateReport:
        return find_duplicates(self.spaces, tenant_id, threshold, self.settings.discovery.duplicates_max_neighbours,
                               self.settings.discovery.duplicates_batch_size, progress)

    def find(self, tenant_id: str, threshold: float, limit: int, cursor: str | None) -> DuplicatesOut:
        held, most = self.spaces.count(tenant_id), self.settings.discovery.duplicates_sync_max_products
        if held > most:
            raise InvalidRequest(f"{held:,} products are too many to compare in one request (at most {most:,}); "
                                 "start a scan with POST /v1/duplicates/scan and read its result when done",
                                 code="catalogue_too_large", details={"products": held, "max_products": most})
        report = self.report(tenant_id, threshold)
        page = page_of([group.as_dict() for group in report.groups], limit, cursor)
        return DuplicatesOut(threshold=threshold, products_scanned=report.products_scanned, **dict(page))

    def submit_find(self, tenant_id: str, threshold: float, limit: int, cursor: str | None) -> Future[DuplicatesOut]:
        """`find` on the duplicates pool: a few at a time in all, one tenant's beyond its share refused (429)."""
        return self._sync.submit(tenant_id, lambda: self.find(tenant_id, threshold, limit, cursor))

    def start_scan(self, tenant_id: str, threshold: float) -> DuplicateScanOut:
        with self.db.session() as session:
            live_tenant(TenantRepository(session, tenant_id), lock=True)  # counted and added one request at a time
            repo = DuplicateScanRepository(session, tenant_id)
            running = repo.unfinished_with_threshold(threshold)
            if running is not None:  # asked twice: one scan answers both
                return self._out(running, 0, None)
            most = self.settings.discovery.duplicates_scans_per_tenant
            if repo.unfinished_count() >= most:
                raise TrooplyError(f"{most} duplicate scans are already queued or running for this account; read "
                                   "their results (GET /v1/duplicates/scan/{id}) before starting another",
                                   code="too_many_scans", status=429, details={"retry_after": 5, "limit": most})
            scan = DuplicateScan(id=f"dup_{uuid.uuid4().hex[:20]}", tenant_id=tenant_id, threshold=threshold,
                                 status=PENDING, products_scanned=0)
            repo.add(scan)
        self._send(tenant_id, scan.id)
        return self._out(scan, 0, None)

    def scan(self, tenant_id: str, scan_id: str, limit: int, cursor: str | None) -> DuplicateScanOut:
        with self.db.session() as session:
            scan = DuplicateScanRepository(session, tenant_id).get(scan_id)
        if scan is None:
            raise NotFound(f"no duplicate scan {scan_id!r}", code="scan_not_found")
        return self._out(scan, limit, cursor)

    def run_scan(self, tenant_id: str, scan_id: str) -> None:
        """The background task: idempotent, so a redelivered or resumed scan simply runs again."""
        with self.db.session() as session:
            scan = DuplicateScanRepository(session, tenant_id).get(scan_id)
            if scan is None or scan.status not in UNFINISHED:
                return
            scan.status, threshold = RUNNING, scan.threshold
        last = [time.monotonic()]

        def progress(scanned: int) -> None:
            if self._stopping:
                raise ScanInterrupted
            if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
                last[0] = time.monotonic()
                self._update(tenant_id, scan_id, products_scanned=scanned)

        try:
            report = self.report(tenant_id, threshold, progress)
        except ScanInterrupted:
            log.info("duplicate scan %s interrupted by shutdown; it resumes at the next start", scan_id)
            return
        except Exception as error:
            if not isinstance(error, TrooplyError):
                log.exception("duplicate scan %s of tenant %s failed", scan_id, tenant_id)
            message = error.message if isinstance(error, TrooplyError) else "an unexpected error; it has been logged"
            self._update(tenant_id, scan_id, status=FAILED, error=message, finished_at=utcnow())
            return
        self._update(tenant_id, scan_id, status=COMPLETED, products_scanned=report.products_scanned,
                     groups=[group.as_dict() for group in report.groups], finished_at=utcnow())
        self._prune(tenant_id)

    def resume_unfinished(self) -> int:
        """Scans accepted but not finished when the process stopped: queued again (SQL is the truth)."""
        with self.db.session() as session:
            unfinished = DuplicateScanMaintenance(session).unfinished_scans()
        for tenant_id, scan_id in unfinished:
            self._send(tenant_id, scan_id)
        return len(unfinished)

    def close(self) -> None:
        """Stops a scan running in this process between two batches; it is resumed at the next start."""
        self._stopping = True
        self._sync.close()

    def _send(self, tenant_id: str, scan_id: str) -> None:
        self._dispatch(tenant_id, scan_id)

    def _update(self, tenant_id: str, scan_id: str, **values) -> None:
        with self.db.session() as session:
            DuplicateScanRepository(session, tenant_id).update(scan_id, **values)

    def _prune(self, tenant_id: str) -> None:
        with self.db.session() as session:
            DuplicateScanRepository(session, tenant_id).prune_finished(KEEP_SCANS)

    @staticmethod
    def _out(scan: DuplicateScan, limit: int, cursor: str | None) -> DuplicateScanOut:
        page = page_of(scan.groups, limit, cursor) if scan.status == COMPLETED and scan.groups is not None else None
        return DuplicateScanOut(scan_id=scan.id, status=scan.status, threshold=scan.threshold,
                                products_scanned=scan.products_scanned, error=scan.error,
                                created_at=scan.created_at, finished_at=scan.finished_at,
                                **(dict(page) if page is not None else {}))
