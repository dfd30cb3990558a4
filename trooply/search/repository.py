"""Search log rows in SQL, written one tenant's at a time."""

from collections.abc import Sequence

from trooply.db import TenantScopedRepository
from trooply.search.models import SearchLog


class SearchLogRepository(TenantScopedRepository):
    def add_all(self, rows: Sequence[SearchLog]) -> None:
        for row in rows:
            self._add(row)
