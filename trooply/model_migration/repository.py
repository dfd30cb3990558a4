"""Every model-migration query: the state row and the sweep across tenants through `ModelStateRepository`,
one tenant's progress and failures through `TenantMigrationRepository`."""

from collections.abc import Sequence
from typing import cast

from sqlalchemy import CursorResult, delete, func, select, update

from trooply.catalog.models import INDEXED, ProductRecord
from trooply.db import MaintenanceRepository, TenantScopedRepository
from trooply.model_migration.models import (
    PENDING,
    RUNNING,
    STATE_ID,
    MigrationFailure,
    ModelStateRow,
    TenantMigration,
)
from trooply.tenancy.models import Tenant


class ModelStateRepository(MaintenanceRepository):
    def get(self) -> ModelStateRow | None:
        return self.session.get(ModelStateRow, STATE_ID)

    def lock(self) -> ModelStateRow | None:
        """The state row, write-locked until the transaction ends (a no-op UPDATE first: SQLite ignores FOR
        UPDATE, and there the UPDATE takes the database write lock), so two admin calls cannot interleave."""
        self.session.execute(update(ModelStateRow).where(ModelStateRow.id == STATE_ID)
                             .values(cutover=ModelStateRow.cutover).execution_options(synchronize_session=False))
        return self.session.scalars(select(ModelStateRow).where(ModelStateRow.id == STATE_ID)
                                    .with_for_update().execution_options(populate_existing=True)).first()

    def add(self, row: ModelStateRow) -> None:
        self.session.add(row)

    def live_tenant_ids(self) -> list[str]:
        return list(self.session.scalars(select(Tenant.id).where(Tenant.deleted_at.is_(None)).order_by(Tenant.id)))

    def begin_tenants(self, tenant_ids: Sequence[str]) -> None:
        """A new migration: each tenant from its first product, and no failures of an earlier one."""
        self.clear_tenants()
        self._add_tenants(tenant_ids)

    def add_new_tenants(self) -> list[str]:
        """Live tenants created since the migration began (they have no row yet): each from its first product."""
        known = select(TenantMigration.tenant_id)
        new = list(self.session.scalars(select(Tenant.id).where(Tenant.deleted_at.is_(None), Tenant.id.not_in(known))
                                        .order_by(Tenant.id)))
        self._add_tenants(new)
        return new

    def _add_tenants(self, tenant_ids: Sequence[str]) -> None:
        if not tenant_ids:
            return
        rows = self.session.execute(select(ProductRecord.tenant_id, func.count())
                                    .where(ProductRecord.status == INDEXED, ProductRecord.tenant_id.in_(tenant_ids))
                                    .group_by(ProductRecord.tenant_id))
        indexed = {tenant_id: count for tenant_id, count in rows}
        self.session.add_all(TenantMigration(tenant_id=t, status=PENDING, done=0, total=indexed.get(t, 0))
                             for t in tenant_ids)

    def reopen_tenants(self, tenant_ids: Sequence[str]) -> None:
        """The tenants run again (a run under way stops at its next page and is queued again)."""
        if tenant_ids:
            self.session.execute(update(TenantMigration).where(TenantMigration.tenant_id.in_(tenant_ids))
                                 .values(status=PENDING))

    def clear_tenants(self) -> None:
        # Progress rows before failure rows, as every writer of both takes them: no deadlock on PostgreSQL.
        self.session.execute(delete(TenantMigration))
        self.session.execute(delete(MigrationFailure))

    def tenants(self) -> list[TenantMigration]:
        return list(self.session.scalars(select(TenantMigration).order_by(TenantMigration.tenant_id)))

    def failures_per_tenant(self) -> dict[str, int]:
        rows = self.session.execute(select(MigrationFailure.tenant_id, func.count())
                                    .group_by(MigrationFailure.tenant_id))
        return {tenant_id: count for tenant_id, count in rows}

    def unfinished_tenants(self) -> list[str]:
        """Restart recovery: every tenant whose re-encode was not finished, across tenants."""
        return list(self.session.scalars(select(TenantMigration.tenant_id)
                                         .where(TenantMigration.status.in_((PENDING, RUNNING)))))


class TenantMigrationRepository(TenantScopedRepository):
    """One tenant's progress row and failure rows. A transaction that writes failure rows locks the progress row
    first (`lock`, `lock_if_running`), as the abort and the tenant purge delete them, so that two of them never
    wait on each other."""

    def get(self) -> TenantMigration | None:
        return self._get(TenantMigration)

    def lock(self) -> TenantMigration | None:
        """The progress row, write-locked until the transaction ends (an abort deleting it waits)."""
        self.session.execute(self._update(TenantMigration).values(status=TenantMigration.status)
                             .execution_options(synchronize_session=False))
        return self.session.scalars(self._select(TenantMigration).execution_options(populate_existing=True)).first()

    def lock_if_running(self) -> bool:
        """Write-locks the tenant's progress row until the transaction ends, when its run is still on: an abort
        (which deletes the row) then waits for the page being written, and a page after it writes nothing."""
        result = cast(CursorResult, self.session.execute(
            self._update(TenantMigration).where(TenantMigration.status == RUNNING).values(status=RUNNING)))
        return result.rowcount == 1

    def set_status(self, status: str) -> None:
        self.session.execute(self._update(TenantMigration).values(status=status))

    def indexed_after(self, cursor: str | None, limit: int) -> list[ProductRecord]:
        """The next page of indexed products in id order: what the target model must encode."""
        query = self._select(ProductRecord).where(ProductRecord.status == INDEXED)
        if cursor is not None:
            query = query.where(ProductRecord.id > cursor)
        return list(self.session.scalars(query.order_by(ProductRecord.id).limit(limit)))

    def existing(self, product_ids: Sequence[str]) -> set[str]:
        """Those of the products that exist, whatever their status."""
        return set(self.session.scalars(self._select(ProductRecord, ProductRecord.id)
                                        .where(ProductRecord.id.in_(product_ids)))) if product_ids else set()

    def indexed(self, product_ids: Sequence[str]) -> list[ProductRecord]:
        return list(self.session.scalars(self._select(ProductRecord).where(
            ProductRecord.status == INDEXED, ProductRecord.id.in_(product_ids)).order_by(ProductRecord.id)))

    def count_indexed_after(self, cursor: str | None) -> int:
        query = self._select(ProductRecord, func.count()).where(ProductRecord.status == INDEXED)
        if cursor is not None:
            query = query.where(ProductRecord.id > cursor)
        return self.session.scalar(query) or 0

    def advance(self, cursor: str | None, to: str, encoded: int, total: int) -> bool:
        """Moves the cursor from `cursor` to `to` unless another run of this tenant's task moved it first
        (a redelivered task): then False, and that run carries on alone."""
        same_cursor = TenantMigration.cursor.is_(None) if cursor is None else TenantMigration.cursor == cursor
        result = cast(CursorResult, self.session.execute(
            self._update(TenantMigration).where(same_cursor, TenantMigration.status == RUNNING)
            .values(cursor=to, done=TenantMigration.done + encoded, total=total)))
        return result.rowcount == 1

    def failures_after(self, after: str | None, limit: int) -> list[str]:
        """The products of recorded failures in id order after `after`: a run tries each one again."""
        query = self._select(MigrationFailure, MigrationFailure.product_id)
        if after is not None:
            query = query.where(MigrationFailure.product_id > after)
        return list(self.session.scalars(query.order_by(MigrationFailure.product_id).limit(limit)))

    def failure_count(self) -> int:
        return self.session.scalar(self._select(MigrationFailure, func.count())) or 0

    def add(self, progress: TenantMigration) -> None:
        self._add(progress)

    def record_failure(self, product_id: str, code: str, message: str) -> None:
        failure = self._get(MigrationFailure, product_id=product_id)
        if failure is None:
            self._add(MigrationFailure(product_id=product_id, code=code, message=message, attempts=1))
        else:
            failure.code, failure.message, failure.attempts = code, message, failure.attempts + 1

    def failed_among(self, product_ids: Sequence[str]) -> list[str]:
        return list(self.session.scalars(self._select(MigrationFailure, MigrationFailure.product_id)
                                         .where(MigrationFailure.product_id.in_(product_ids)))) if product_ids else []

    def clear_failures(self, product_ids: Sequence[str]) -> int:
        if not product_ids:
            return 0
        result = cast(CursorResult, self.session.execute(
            self._delete(MigrationFailure).where(MigrationFailure.product_id.in_(product_ids))))
        return result.rowcount
