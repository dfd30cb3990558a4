"""Feedback events and the search-log reads that feedback and popularity need, one tenant's at a time."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from trooply.db import MaintenanceRepository, TenantScopedRepository
from trooply.feedback.models import FeedbackEvent
from trooply.search.models import SearchLog


class FeedbackRepository(TenantScopedRepository):
    def add_event(self, event: FeedbackEvent) -> None:
        self._add(event)

    def returned_ids(self, search_id: str) -> list[str] | None:
        """The product ids a search of this tenant returned; None when there is no such search."""
        return self.session.scalar(self._select(SearchLog, SearchLog.product_ids).where(SearchLog.id == search_id))

    def events_since(self, since: datetime) -> Sequence[tuple[str, str, datetime]]:
        """(product id, event, when) of every event at or after `since`."""
        rows = self.session.execute(self._select(FeedbackEvent, FeedbackEvent.product_id, FeedbackEvent.event,
                                                 FeedbackEvent.created_at).where(FeedbackEvent.created_at >= since))
        return [(product_id, event, at) for product_id, event, at in rows]

    def impressions_since(self, since: datetime) -> Sequence[tuple[list[str], datetime]]:
        """(product ids returned, when) of every search at or after `since`."""
        rows = self.session.execute(self._select(SearchLog, SearchLog.product_ids, SearchLog.created_at)
                                    .where(SearchLog.created_at >= since))
        return [(product_ids, at) for product_ids, at in rows]


class FeedbackMaintenance(MaintenanceRepository):
    def tenants_with_feedback_since(self, since: datetime) -> list[str]:
        """For the periodic popularity refresh, which visits every tenant with recent feedback."""
        return list(self.session.scalars(select(FeedbackEvent.tenant_id).where(FeedbackEvent.created_at >= since)
                                         .distinct()))
