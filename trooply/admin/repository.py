"""The admin's SQL: the tenant directory across tenants, and the purge of one deleted tenant's rows."""

from collections.abc import Sequence

from sqlalchemy import CursorResult, func, inspect, select, tuple_

from trooply.analytics.models import ProductDay, QueryDay, RevenueBucket, SearchBucket
from trooply.catalog.models import IngestItem, IngestJob, ProductRecord
from trooply.colour_refresh.models import ColourRefresh, ColourRefreshFailure
from trooply.db import Base, MaintenanceRepository, TenantScopedRepository
from trooply.duplicates.models import DuplicateScan
from trooply.feedback.models import FeedbackEvent
from trooply.feeds.models import Feed, FeedProduct, FeedSync
from trooply.model_migration.models import MigrationFailure, TenantMigration
from trooply.ranking.models import RuleRecord
from trooply.search.models import SearchLog
from trooply.tenancy.models import AllowedOrigin, ApiKey, Tenant, UsageCounter

# Every table holding a tenant's rows, children before parents (an ingest item refers to its job).
# tests/unit/admin/test_purge.py fails when a table of trooply.models with a tenant_id is missing here.
# A migration's progress rows before its failure rows: the order every writer of both locks them in.
TENANT_TABLES: tuple[type[Base], ...] = (IngestItem, IngestJob, ProductRecord, FeedbackEvent, SearchLog, RuleRecord,
                                         DuplicateScan, UsageCounter, TenantMigration, MigrationFailure, ColourRefresh,
                                         AllowedOrigin, SearchBucket, RevenueBucket, QueryDay, ProductDay, ApiKey,
                                         FeedProduct, FeedSync, Feed, ColourRefreshFailure)


class TenantRoster(MaintenanceRepository):
    """Tenants as the operator sees them: every tenant, each with its catalogue size."""

    def any_tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant row whatever its state, deleted (being purged) included."""
        return self.session.get(Tenant, tenant_id)

    def live_page(self, limit: int, after: str | None) -> list[Tenant]:
        """Tenants not deleted, in id order, those after `after` (the last id of the previous page)."""
        query = select(Tenant).where(Tenant.deleted_at.is_(None)).order_by(Tenant.id).limit(limit)
        return list(self.session.scalars(query if after is None else query.where(Tenant.id > after)))

    def product_counts(self, tenant_ids: Sequence[str]) -> dict[str, int]:
        rows = self.session.execute(select(ProductRecord.tenant_id, func.count()).where(
            ProductRecord.tenant_id.in_(tenant_ids)).group_by(ProductRecord.tenant_id))
        return {tenant_id: 0 for tenant_id in tenant_ids} | {tenant_id: count for tenant_id, count in rows}

    def deleted_tenant_ids(self) -> list[str]:
        """Tenants marked deleted whose purge has not finished: the purges to resume."""
        return list(self.session.scalars(select(Tenant.id).where(Tenant.deleted_at.is_not(None))))

    def remove_deleted_tenant(self, tenant_id: str) -> None:
        """The purge's last step; a tenant not marked deleted is never removed."""
        tenant = self.session.get(Tenant, tenant_id)
        if tenant is not None and tenant.deleted_at is not None:
            self.session.delete(tenant)


class TenantPurgeRepository(TenantScopedRepository):
    """Deletes one tenant's rows a batch at a time: short transactions, and a crash loses at most one batch."""

    def delete_batch(self, model: type[Base], size: int) -> int:
        """Deletes up to `size` of the tenant's rows of this table; the number deleted."""
        key = inspect(model).primary_key
        chosen = self._select(model, *key).limit(size)
        result = self.session.execute(self._delete(model).where(tuple_(*key).in_(chosen))
                                      .execution_options(synchronize_session=False))
        return int(result.rowcount) if isinstance(result, CursorResult) else 0
