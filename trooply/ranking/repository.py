"""Merchandising rules in SQL, one tenant's at a time."""

from typing import cast

from sqlalchemy import CursorResult, func

from trooply.db import TenantScopedRepository
from trooply.ranking.models import RuleRecord


class RuleRepository(TenantScopedRepository):
    def count(self) -> int:
        return self.session.scalar(self._select(RuleRecord, func.count())) or 0

    def all(self) -> list[RuleRecord]:
        return list(self.session.scalars(self._select(RuleRecord).order_by(RuleRecord.created_at)))

    def add(self, rule: RuleRecord) -> None:
        self._add(rule)

    def delete(self, rule_id: str) -> bool:
        gone = cast(CursorResult, self.session.execute(self._delete(RuleRecord).where(RuleRecord.id == rule_id)))
        return bool(gone.rowcount)
