"""Every colour-refresh query: one tenant's progress and products through `ColourRefreshRepository`, the sweep
across tenants through `ColourRefreshMaintenance`."""

from collections.abc import Sequence
from typing import cast

from sqlalchemy import CursorResult, func, select

from trooply.catalog.models import INDEXED, ProductRecord
from trooply.colour_refresh.models import DONE, PENDING, ColourRefresh, ColourRefreshFailure
from trooply.db import MaintenanceRepository, TenantScopedRepository
from trooply.tenancy.models import Tenant


class ColourRefreshRepository(TenantScopedRepository):
    def get(self) -> ColourRefresh | None:
        return self._get(ColourRefresh)

    def set_status(self, status: str) -> None:
        self.session.execute(self._update(ColourRefresh).values(status=status))

    def indexed_after(self, cursor: str | None, limit: int) -> list[ProductRecord]:
        query = self._select(ProductRecord).where(ProductRecord.status == INDEXED)
        if cursor is not None:
            query = query.where(ProductRecord.id > cursor)
        return list(self.session.scalars(query.order_by(ProductRecord.id).limit(limit)))

    def image_urls(self, product_ids: Sequence[str]) -> dict[str, str]:
        """The current image of each product still indexed (read under the products' locks)."""
        rows = self.session.execute(self._select(ProductRecord, ProductRecord.id, ProductRecord.image_url)
                                    .where(ProductRecord.id.in_(product_ids), ProductRecord.status == INDEXED))
        return {product_id: url for product_id, url in rows}

    def advance(self, cursor: str | None, to: str, done: int, failed: int) -> bool:
        """Moves the cursor past a page, only from where this run read it: False when another run of the task
        (or a restart) moved it meanwhile, and this run must stop."""
        same_cursor = ColourRefresh.cursor.is_(None) if cursor is None else ColourRefresh.cursor == cursor
        result = cast(CursorResult, self.session.execute(
            self._update(ColourRefresh).where(same_cursor)
            .values(cursor=to, done=ColourRefresh.done + done, failed=ColourRefresh.failed + failed)
            .execution_options(synchronize_session=False)))
        return result.rowcount == 1

    def finish(self) -> None:
        self.session.execute(self._update(ColourRefresh).values(status=DONE))

    def record_failures(self, failures: dict[str, tuple[str, str]]) -> None:
        """Each failed product with its error code and message; a product failing again counts one more attempt."""
        for product_id, (code, message) in sorted(failures.items()):
            failure = self._get(ColourRefreshFailure, product_id=product_id)
            if failure is None:
                self._add(ColourRefreshFailure(product_id=product_id, code=code, message=message, attempts=1))
            else:
                failure.code, failure.message, failure.attempts = code, message, failure.attempts + 1

    def clear_failures(self, product_ids: Sequence[str]) -> None:
        if product_ids:
            self.session.execute(self._delete(ColourRefreshFailure)
                                 .where(ColourRefreshFailure.product_id.in_(product_ids)))

    def failures(self, limit: int) -> list[ColourRefreshFailure]:
        return list(self.session.scalars(self._select(ColourRefreshFailure)
                                         .order_by(ColourRefreshFailure.product_id).limit(limit)))


class ColourRefreshMaintenance(MaintenanceRepository):
    def rows(self) -> list[ColourRefresh]:
        return list(self.session.scalars(select(ColourRefresh).order_by(ColourRefresh.tenant_id)))

    def unfinished(self) -> list[str]:
        return list(self.session.scalars(select(ColourRefresh.tenant_id).where(ColourRefresh.status != DONE)
                                         .order_by(ColourRefresh.tenant_id)))

    def begin(self, version: int, restart: bool) -> list[str]:
        """A row from the first product for each live tenant with indexed products whose colour is older than
        `version` (every one with `restart`); returns the tenants begun."""
        rows = self.session.execute(
            select(ProductRecord.tenant_id, func.count()).join(Tenant, Tenant.id == ProductRecord.tenant_id)
            .where(ProductRecord.status == INDEXED, Tenant.deleted_at.is_(None)).group_by(ProductRecord.tenant_id))
        counts: dict[str, int] = {tenant_id: count for tenant_id, count in rows}
        known = {row.tenant_id: row for row in self.rows()}
        begun = []
        for tenant_id, total in sorted(counts.items()):
            row = known.get(tenant_id)
            if row is not None and row.version >= version and not restart:
                continue
            if row is None:
                row = ColourRefresh(tenant_id=tenant_id, version=version)
                self.session.add(row)
            row.version, row.status, row.cursor, row.done, row.failed, row.total = version, PENDING, None, 0, 0, total
            begun.append(tenant_id)
        return begun
