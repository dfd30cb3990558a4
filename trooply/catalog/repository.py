"""Every catalog query. `CatalogRepository` is one tenant's view (its base adds the tenant to each statement);
`CatalogMaintenance` holds the few reads across tenants that restart recovery needs."""

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, func, select

from trooply.catalog.models import FAILED, PENDING, IngestItem, IngestJob, ProductRecord
from trooply.db import MaintenanceRepository, TenantScopedRepository, utcnow


class CatalogRepository(TenantScopedRepository):
    def get_product(self, product_id: str) -> ProductRecord | None:
        return self._get(ProductRecord, id=product_id)

    def get_products(self, product_ids: Sequence[str]) -> dict[str, ProductRecord]:
        rows = self.session.scalars(self._select(ProductRecord).where(ProductRecord.id.in_(product_ids)))
        return {row.id: row for row in rows}

    def all_products(self) -> list[ProductRecord]:
        return list(self.session.scalars(self._select(ProductRecord)))

    def count_products(self) -> int:
        return self.session.scalar(self._select(ProductRecord, func.count())) or 0

    def list_products(self, status: str | None, limit: int, after: str | None) -> list[ProductRecord]:
        query = self._select(ProductRecord)
        if status:
            query = query.where(ProductRecord.status == status)
        if after:
            query = query.where(ProductRecord.id > after)
        return list(self.session.scalars(query.order_by(ProductRecord.id).limit(limit)))

    def status_counts(self) -> dict[str, int]:
        rows = self.session.execute(self._select(ProductRecord, ProductRecord.status, func.count())
                                    .group_by(ProductRecord.status))
        return {status: count for status, count in rows}

    def failure_counts(self) -> dict[str, int]:
        rows = self.session.execute(self._select(ProductRecord, ProductRecord.error_code, func.count())
                                    .where(ProductRecord.status == FAILED).group_by(ProductRecord.error_code))
        return {code or "unknown": count for code, count in rows}

    def category_counts(self, limit: int) -> list[tuple[str, int]]:
        category = ProductRecord.meta["category"].as_string()
        rows = self.session.execute(self._select(ProductRecord, category, func.count()).where(category.is_not(None))
                                    .group_by(category).order_by(func.count().desc(), category).limit(limit))
        return [(name, count) for name, count in rows]

    def failed_products(self, product_ids: Sequence[str] | None) -> list[ProductRecord]:
        """The tenant's failed products: all of them, or those of `product_ids` that failed."""
        query = self._select(ProductRecord).where(ProductRecord.status == FAILED)
        if product_ids is not None:
            query = query.where(ProductRecord.id.in_(product_ids))
        return list(self.session.scalars(query.order_by(ProductRecord.id)))

    def recent_jobs(self, limit: int) -> list[IngestJob]:
        return list(self.session.scalars(self._select(IngestJob)
                                         .order_by(IngestJob.created_at.desc(), IngestJob.id).limit(limit)))

    def all_product_ids(self) -> list[str]:
        return list(self.session.scalars(self._select(ProductRecord, ProductRecord.id).order_by(ProductRecord.id)))

    def add(self, record: ProductRecord | IngestJob | IngestItem) -> None:
        self._add(record)

    def add_job(self, job: IngestJob, items: Sequence[IngestItem]) -> None:
        self._add(job)
        self.session.flush()  # the job row must exist before its items reference it
        for item in items:
            self._add(item)

    def lock_products(self, product_ids: Sequence[str]) -> None:
        """Write-locks the products' rows until the transaction ends. A no-op UPDATE rather than SELECT FOR
        UPDATE, which SQLite ignores: there the UPDATE takes the database write lock, on PostgreSQL the rows'."""
        self.session.execute(self._update(ProductRecord).where(ProductRecord.id.in_(product_ids))
                             .values(updated_at=ProductRecord.updated_at).execution_options(synchronize_session=False))

    def delete_product(self, product_id: str) -> bool:
        result = cast(CursorResult, self.session.execute(
            self._delete(ProductRecord).where(ProductRecord.id == product_id)))
        return bool(result.rowcount)

    def forget_vectors(self) -> None:
        self.session.execute(self._update(ProductRecord).values(content_hash=None, indexed_at=None, status=PENDING,
                                                                error_code=None, error_message=None))

    def get_job(self, job_id: str) -> IngestJob | None:
        return self._get(IngestJob, id=job_id)

    def job_counts(self, job_id: str) -> dict[str, int]:
        rows = self.session.execute(self._select(IngestItem, IngestItem.status, func.count())
                                    .where(IngestItem.job_id == job_id).group_by(IngestItem.status))
        return {status: count for status, count in rows}

    def failed_items(self, job_id: str, limit: int) -> list[IngestItem]:
        return list(self.session.scalars(self._select(IngestItem).where(
            IngestItem.job_id == job_id, IngestItem.status == FAILED).order_by(IngestItem.product_id).limit(limit)))

    def pending_items(self, job_id: str, product_ids: Sequence[str]) -> list[IngestItem]:
        return list(self.session.scalars(self._select(IngestItem).where(
            IngestItem.job_id == job_id, IngestItem.product_id.in_(product_ids), IngestItem.status == PENDING)))


class CatalogMaintenance(MaintenanceRepository):
    def claim_unfinished_items(self, updated_before: datetime | None = None) -> list[IngestItem]:
        """Restart recovery: work accepted but not finished, across tenants, marked as just touched so that
        a second sweep soon after leaves it to the first."""
        query = select(IngestItem).where(IngestItem.status == PENDING)
        if updated_before is not None:
            query = query.where(IngestItem.updated_at < updated_before)
        items = list(self.session.scalars(query.order_by(IngestItem.tenant_id, IngestItem.job_id)))
        for item in items:
            item.updated_at = utcnow()
        return items
