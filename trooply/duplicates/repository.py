"""Duplicate scans in SQL: one tenant's through `DuplicateScanRepository`, and the restart sweep across
tenants through `DuplicateScanMaintenance`."""

from typing import Any

from sqlalchemy import func, select

from trooply.db import MaintenanceRepository, TenantScopedRepository
from trooply.duplicates.models import COMPLETED, FAILED, UNFINISHED, DuplicateScan


class DuplicateScanRepository(TenantScopedRepository):
    def get(self, scan_id: str) -> DuplicateScan | None:
        return self._get(DuplicateScan, id=scan_id)

    def unfinished_with_threshold(self, threshold: float) -> DuplicateScan | None:
        return self.session.scalars(self._select(DuplicateScan).where(
            DuplicateScan.status.in_(UNFINISHED), DuplicateScan.threshold == threshold)).first()

    def unfinished_count(self) -> int:
        return self.session.scalar(self._select(DuplicateScan, func.count()).where(
            DuplicateScan.status.in_(UNFINISHED))) or 0

    def add(self, scan: DuplicateScan) -> None:
        self._add(scan)

    def update(self, scan_id: str, **values: Any) -> None:
        self.session.execute(self._update(DuplicateScan).where(DuplicateScan.id == scan_id).values(**values))

    def prune_finished(self, keep: int) -> None:
        """Deletes the finished scans beyond the newest `keep`."""
        finished = self.session.scalars(self._select(DuplicateScan, DuplicateScan.id)
                                        .where(DuplicateScan.status.in_((COMPLETED, FAILED)))
                                        .order_by(DuplicateScan.created_at.desc()).offset(keep)).all()
        if finished:
            self.session.execute(self._delete(DuplicateScan).where(DuplicateScan.id.in_(finished)))


class DuplicateScanMaintenance(MaintenanceRepository):
    def unfinished_scans(self) -> list[tuple[str, str]]:
        """Restart recovery: (tenant id, scan id) of every scan accepted but not finished, across tenants."""
        rows = self.session.execute(select(DuplicateScan.tenant_id, DuplicateScan.id)
                                    .where(DuplicateScan.status.in_(UNFINISHED)))
        return [(tenant_id, scan_id) for tenant_id, scan_id in rows]
