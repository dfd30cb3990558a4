"""Operating tenants: create, list, read, change plan or name, rotate keys, delete (then purge).

The admin API and the CLI's tenant commands both call this service.
"""

import logging
from collections.abc import Callable
from typing import Any

from trooply.admin.languages import LanguageService
from trooply.admin.purge import PurgeInterrupted, TenantPurge
from trooply.admin.repository import TenantRoster
from trooply.admin.schemas import (
    TenantCreated,
    TenantDeletion,
    TenantOut,
    TenantPage,
    TenantPatch,
    TenantSummary,
)
from trooply.config import Settings
from trooply.db import Database
from trooply.errors import NotFound
from trooply.index.base import TierStatus
from trooply.index.words import DEFAULT_LANGUAGE
from trooply.spaces.live import LiveSpaces
from trooply.tasks.names import PURGE_TASK
from trooply.tasks.queue import Dispatcher
from trooply.tasks.send_once import SendOnce
from trooply.tenancy.languages import TenantLanguages
from trooply.tenancy.models import Tenant
from trooply.tenancy.repository import TenantRepository
from trooply.tenancy.schemas import KeyOut
from trooply.tenancy.service import TenantCredentials, TenantService, live_tenant

log = logging.getLogger(__name__)


class TenantAdminService:
    def __init__(self, db: Database, tenants: TenantService, settings: Settings, dispatcher: Dispatcher | None,
                 spaces: LiveSpaces | None = None,
                 tiers: Callable[[str], TierStatus] | None = None,
                 languages: LanguageService | None = None) -> None:
        self.db = db
        self.tenants = tenants
        self.settings = settings
        # The dispatcher runs PURGE_TASK (the container registers it). The CLI has no queue of its own beside an
        # embedded server (None): the server's purge sweep then runs it.
        self._sends = SendOnce(dispatcher)
        # None in a process that must not open the index (the CLI: a running server may hold it): storage
        # tiers then come from `tiers` (read without the index), else read as unknown.
        self.spaces = spaces
        self._tiers = tiers
        self._stopping = False
        self.languages = languages or LanguageService(db, TenantLanguages(db), dispatcher, spaces)

    def create(self, name: str, plan: str) -> TenantCreated:
        credentials = self.tenants.create_tenant(name, plan)
        return TenantCreated(tenant_id=credentials.tenant_id, name=name.strip(), plan=plan,
                             secret_key=credentials.secret_key, publishable_key=credentials.publishable_key)

    def page(self, limit: int, after: str | None = None) -> TenantPage:
        with self.db.session() as session:
            roster = TenantRoster(session)
            tenants = roster.live_page(limit, after)
            products = roster.product_counts([tenant.id for tenant in tenants])
        return TenantPage(tenants=[self._summary(tenant, products[tenant.id]) for tenant in tenants],
                          next_after=tenants[-1].id if len(tenants) == limit else None)

    def get(self, tenant_id: str) -> TenantOut:
        with self.db.session() as session:
            repo = TenantRepository(session, tenant_id)
            tenant = live_tenant(repo)
            keys = [KeyOut(kind=key.kind, prefix=key.prefix, created_at=key.created_at) for key in repo.active_keys()]
            origins = repo.allowed_origins()
            products = TenantRoster(session).product_counts([tenant_id])[tenant_id]
        summary = self._summary(tenant, products)
        return TenantOut(**summary.model_dump(), limits=self.settings.plan(tenant.plan), keys=keys,
                         allowed_origins=origins, language=tenant.language or DEFAULT_LANGUAGE,
                         words_language=tenant.words_language or DEFAULT_LANGUAGE)

    def update(self, tenant_id: str, patch: TenantPatch) -> TenantOut:
        if patch.plan is not None:
            self.settings.plan(patch.plan)  # unknown_plan
        if patch.allowed_origins is not None:
            self.tenants.set_allowed_origins(tenant_id, patch.allowed_origins)  # invalid_origin: nothing changed
        with self.db.session() as session:
            tenant = live_tenant(TenantRepository(session, tenant_id), lock=True)
            if patch.name is not None:
                tenant.name = patch.name.strip()
            if patch.plan is not None:
                tenant.plan = patch.plan
        if patch.language is not None:
            self.languages.set_language(tenant_id, patch.language)  # its words re-tokenised in the background
        # Quotas read the plan from SQL; rate limits from the cached key, so this process forgets it now
        # (other processes within TROOPLY_KEY_CACHE_SECONDS).
        self.tenants.forget(tenant_id)
        return self.get(tenant_id)

    def rotate_keys(self, tenant_id: str) -> TenantCredentials:
        return self.tenants.rotate_keys(tenant_id)

    def delete(self, tenant_id: str) -> TenantDeletion:
        """Revokes the keys at once and purges the data in the background. Asking again sends the purge again
        (it is idempotent) unless this process is running it; once it has finished, the tenant is not found."""
        if not self.tenants.mark_deleted(tenant_id):
            raise NotFound(f"no tenant {tenant_id!r}", code="tenant_not_found")
        self._send_purge(tenant_id)
        return TenantDeletion(tenant_id=tenant_id, status="deleting")

    def run_purge(self, tenant_id: str) -> None:
        """PURGE_TASK: on a Celery worker that consumes the background queues, or embedded on the purge thread."""
        if self.spaces is None:
            raise RuntimeError("this process has no index to purge")
        try:
            TenantPurge(self.db, self.spaces, stopping=lambda: self._stopping).run(tenant_id)
        except PurgeInterrupted:
            log.info("purge of tenant %s interrupted by shutdown; it resumes at the next start", tenant_id)
        finally:
            self._sends.ended(tenant_id)

    def resume_purges(self) -> int:
        """Tenants deleted but not yet purged (a process stopped midway, or `trooply tenants delete` ran beside
        an embedded server): their purges are sent again, unless this process is already running them."""
        with self.db.session() as session:
            deleted = TenantRoster(session).deleted_tenant_ids()
        for tenant_id in deleted:
            self._send_purge(tenant_id)
        return len(deleted)

    def close(self) -> None:
        """Stops a purge running in this process between two batches; it resumes at the next start."""
        self._stopping = True

    def _send_purge(self, tenant_id: str) -> None:
        self._sends.send(tenant_id, PURGE_TASK, [tenant_id])

    def _summary(self, tenant: Tenant, products: int) -> TenantSummary:
        return TenantSummary(tenant_id=tenant.id, name=tenant.name, plan=tenant.plan, created_at=tenant.created_at,
                             products=products, **self._storage(tenant.id))

    def _storage(self, tenant_id: str) -> dict[str, Any]:
        if self.spaces is not None:
            status = self.spaces.tier(tenant_id)
        elif self._tiers is not None:
            status = self._tiers(tenant_id)
        else:
            return {"storage_tier": None}
        return {"storage_tier": status.tier, "promoting": status.promoting}
