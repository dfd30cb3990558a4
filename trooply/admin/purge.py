"""The purge of a deleted tenant: its vectors, then its rows table by table in batches, then the tenant row.

Every step is idempotent, so the purge is resumable: a crash or shutdown midway leaves the tenant marked
deleted, and running the purge again (resumed at the next start, or redelivered by Celery) finishes it.
"""

import logging
from collections.abc import Callable

from trooply.admin.repository import TENANT_TABLES, TenantPurgeRepository, TenantRoster
from trooply.db import Base, Database
from trooply.spaces.live import LiveSpaces

log = logging.getLogger(__name__)
PURGE_BATCH_ROWS = 1000


class PurgeInterrupted(Exception):
    """The process is stopping: the tenant stays marked deleted and its purge resumes at the next start."""


class TenantPurge:
    def __init__(self, db: Database, spaces: LiveSpaces, batch_rows: int = PURGE_BATCH_ROWS,
                 stopping: Callable[[], bool] = lambda: False) -> None:
        self.db = db
        self.spaces = spaces
        self.batch_rows = batch_rows
        self._stopping = stopping

    def run(self, tenant_id: str) -> None:
        """Purges a tenant marked deleted; a tenant already gone, or one not marked deleted, is left alone."""
        with self.db.session() as session:
            tenant = TenantRoster(session).any_tenant(tenant_id)
        if tenant is None:
            return
        if tenant.deleted_at is None:
            log.error("refusing to purge tenant %s: it is not marked deleted", tenant_id)
            return
        self.spaces.drop_tenant(tenant_id)
        for model in TENANT_TABLES:
            self._empty(model, tenant_id)
        # Again: an ingest batch that was in flight at the deletion may have written vectors since.
        self.spaces.drop_tenant(tenant_id)
        with self.db.session() as session:
            TenantRoster(session).remove_deleted_tenant(tenant_id)  # cascades any row written meanwhile
        log.info("tenant %s purged", tenant_id)

    def _empty(self, model: type[Base], tenant_id: str) -> None:
        while not self._stopping():
            with self.db.session() as session:
                if TenantPurgeRepository(session, tenant_id).delete_batch(model, self.batch_rows) < self.batch_rows:
                    return
        raise PurgeInterrupted
