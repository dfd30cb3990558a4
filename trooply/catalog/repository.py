"""Every catalog query, scoped by tenant: the tenant id is the first argument of each method."""

from collections.abc import Sequence
from typing import cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from trooply.catalog.models import FAILED, PENDING, IngestItem, IngestJob, ProductRecord
from trooply.db import utcnow


class CatalogRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_product(self, tenant_id: str, product_id: str) -> ProductRecord | None:
        return self.session.get(ProductRecord, (tenant_id, product_id))

    def get_products(self, tenant_id: str, product_ids: Sequence[str]) -> dict[str, ProductRecord]:
        rows = self.session.scalars(select(ProductRecord).where(
            ProductRecord.tenant_id == tenant_id, ProductRecord.id.in_(product_ids)))
        return {row.id: row for row in rows}

    def count_products(self, tenant_id: str) -> int:
        return self.session.scalar(select(func.count()).select_from(ProductRecord)
                                   .where(ProductRecord.tenant_id == tenant_id)) or 0

    def list_products(self, tenant_id: str, status: str | None, limit: int,
                      after: str | None) -> list[ProductRecord]:
        query = select(ProductRecord).where(ProductRecord.tenant_id == tenant_id)
        if status:
            query = query.where(ProductRecord.status == status)
        if after:
            query = query.where(ProductRecord.id > after)
        return list(self.session.scalars(query.order_by(ProductRecord.id).limit(limit)))

    def status_counts(self, tenant_id: str) -> dict[str, int]:
        rows = self.session.execute(select(ProductRecord.status, func.count()).where(
            ProductRecord.tenant_id == tenant_id).group_by(ProductRecord.status))
        return {status: count for status, count in rows}

    def failure_counts(self, tenant_id: str) -> dict[str, int]:
        rows = self.session.execute(select(ProductRecord.error_code, func.count()).where(
            ProductRecord.tenant_id == tenant_id, ProductRecord.status == FAILED)
            .group_by(ProductRecord.error_code))
        return {code or "unknown": count for code, count in rows}

    def category_counts(self, tenant_id: str, limit: int) -> list[tuple[str, int]]:
        category = ProductRecord.meta["category"].as_string()
        rows = self.session.execute(select(category, func.count()).where(
            ProductRecord.tenant_id == tenant_id, category.is_not(None))
            .group_by(category).order_by(func.count().desc(), category).limit(limit))
        return [(name, count) for name, count in rows]

    def failed_products(self, tenant_id: str, product_ids: Sequence[str] | None) -> list[ProductRecord]:
        """The tenant's failed products: all of them, or those of `product_ids` that failed."""
        query = select(ProductRecord).where(ProductRecord.tenant_id == tenant_id, ProductRecord.status == FAILED)
        if product_ids is not None:
            query = query.where(ProductRecord.id.in_(product_ids))
        return list(self.session.scalars(query.order_by(ProductRecord.id)))

    def recent_jobs(self, tenant_id: str, limit: int) -> list[IngestJob]:
        return list(self.session.scalars(select(IngestJob).where(IngestJob.tenant_id == tenant_id)
                                         .order_by(IngestJob.created_at.desc(), IngestJob.id).limit(limit)))

    def all_product_ids(self, tenant_id: str) -> list[str]:
        return list(self.session.scalars(select(ProductRecord.id).where(ProductRecord.tenant_id == tenant_id)
                                         .order_by(ProductRecord.id)))

    def add(self, tenant_id: str, record: ProductRecord | IngestJob | IngestItem) -> None:
        if record.tenant_id != tenant_id:
            raise ValueError("record belongs to another tenant")
        self.session.add(record)

    def lock_products(self, tenant_id: str, product_ids: Sequence[str]) -> None:
        """Write-locks the products' rows until the transaction ends. A no-op UPDATE rather than SELECT FOR
        UPDATE, which SQLite ignores: there the UPDATE takes the database write lock, on PostgreSQL the rows'."""
        self.session.execute(update(ProductRecord).where(
            ProductRecord.tenant_id == tenant_id, ProductRecord.id.in_(product_ids))
            .values(updated_at=ProductRecord.updated_at).execution_options(synchronize_session=False))

    def delete_product(self, tenant_id: str, product_id: str) -> bool:
        result = cast(CursorResult, self.session.execute(delete(ProductRecord).where(
            ProductRecord.tenant_id == tenant_id, ProductRecord.id == product_id)))
        return bool(result.rowcount)

    def forget_vectors(self, tenant_id: str) -> None:
        self.session.execute(update(ProductRecord).where(ProductRecord.tenant_id == tenant_id)
                             .values(content_hash=None, indexed_at=None, status=PENDING,
                                     error_code=None, error_message=None))

    def get_job(self, tenant_id: str, job_id: str) -> IngestJob | None:
        return self.session.scalars(select(IngestJob).where(
            IngestJob.tenant_id == tenant_id, IngestJob.id == job_id)).first()

    def job_counts(self, tenant_id: str, job_id: str) -> dict[str, int]:
        rows = self.session.execute(select(IngestItem.status, func.count()).where(
            IngestItem.tenant_id == tenant_id, IngestItem.job_id == job_id).group_by(IngestItem.status))
        return {status: count for status, count in rows}

    def failed_items(self, tenant_id: str, job_id: str, limit: int) -> list[IngestItem]:
        return list(self.session.scalars(select(IngestItem).where(
            IngestItem.tenant_id == tenant_id, IngestItem.job_id == job_id, IngestItem.status == FAILED)
            .order_by(IngestItem.product_id).limit(limit)))

    def pending_items(self, tenant_id: str, job_id: str, product_ids: Sequence[str]) -> list[IngestItem]:
        return list(self.session.scalars(select(IngestItem).where(
            IngestItem.tenant_id == tenant_id, IngestItem.job_id == job_id,
            IngestItem.product_id.in_(product_ids), IngestItem.status == PENDING)))


def unfinished_items(session: Session, updated_before=None) -> list[IngestItem]:
    """Work accepted but not finished, across tenants: only recovery after a restart reads this."""
    query = select(IngestItem).where(IngestItem.status == PENDING)
    if updated_before is not None:
        query = query.where(IngestItem.updated_at < updated_before)
    return list(session.scalars(query.order_by(IngestItem.tenant_id, IngestItem.job_id)))


def touch_items(session: Session, items: Sequence[IngestItem]) -> None:
    for item in items:
        item.updated_at = utcnow()
