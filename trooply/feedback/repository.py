"""Feedback events and the search-log reads that feedback and popularity need, one tenant's at a time."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, delete, select

from trooply.db import MaintenanceRepository, TenantScopedRepository
from trooply.feedback.models import FeedbackEvent
from trooply.search.models import SearchLog


@dataclass(frozen=True)
class LoggedSearch:
    """What an event needs of the search it is about: what it returned, and its bucket in the analytics."""

    product_ids: list[str]
    created_at: datetime
    mode: str
    profile: str | None
    query: str | None


class FeedbackRepository(TenantScopedRepository):
    def add_event(self, event: FeedbackEvent) -> None:
        self._add(event)

    def logged_searches(self, search_ids: Collection[str]) -> dict[str, LoggedSearch]:
        """This tenant's searches among `search_ids`; another tenant's read as missing."""
        rows = self.session.execute(self._select(SearchLog, SearchLog.id, SearchLog.product_ids, SearchLog.created_at,
                                                 SearchLog.mode, SearchLog.profile, SearchLog.query)
                                    .where(SearchLog.id.in_(list(search_ids))))
        return {search_id: LoggedSearch(*found) for search_id, *found in rows}

    def stored_event_ids(self, event_ids: Collection[str]) -> set[str]:
        return set(self.session.scalars(self._select(FeedbackEvent, FeedbackEvent.event_id)
                                        .where(FeedbackEvent.event_id.in_(list(event_ids)))))

    def stored_actions(self, search_ids: Collection[str]) -> set[tuple[str, str, str]]:
        """(search id, product id, event) already stored for these searches."""
        rows = self.session.execute(self._select(FeedbackEvent, FeedbackEvent.search_id, FeedbackEvent.product_id,
                                                 FeedbackEvent.event)
                                    .where(FeedbackEvent.search_id.in_(list(search_ids))))
        return {(search_id, product_id, event) for search_id, product_id, event in rows}

    def returned_ids(self, search_id: str) -> list[str] | None:
        """The product ids a search of this tenant returned; None when there is no such search."""
        return self.session.scalar(self._select(SearchLog, SearchLog.product_ids).where(SearchLog.id == search_id))

    def events_since(self, since: datetime) -> Sequence[tuple[str, str, datetime, int]]:
        """(product id, event, when, position) of every event at or after `since`."""
        rows = self.session.execute(self._select(FeedbackEvent, FeedbackEvent.product_id, FeedbackEvent.event,
                                                 FeedbackEvent.created_at, FeedbackEvent.position)
                                    .where(FeedbackEvent.created_at >= since))
        return [(product_id, event, at, position) for product_id, event, at, position in rows]

    def impressions_since(self, since: datetime) -> Sequence[tuple[list[str], datetime]]:
        """(product ids returned, when) of every search at or after `since`."""
        rows = self.session.execute(self._select(SearchLog, SearchLog.product_ids, SearchLog.created_at)
                                    .where(SearchLog.created_at >= since))
        return [(product_ids, at) for product_ids, at in rows]


class FeedbackMaintenance(MaintenanceRepository):
    def drop_raw_before(self, cutoff: datetime, limit: int) -> int:
        """The retention sweep, across tenants: up to `limit` events and `limit` search log rows older than
        `cutoff`; how many of the larger kind went (the sweep repeats while a batch is full)."""
        old_events = select(FeedbackEvent.id).where(FeedbackEvent.created_at < cutoff).limit(limit)
        events = self.session.execute(delete(FeedbackEvent).where(FeedbackEvent.id.in_(old_events))
                                      .execution_options(synchronize_session=False))
        old_searches = select(SearchLog.id).where(SearchLog.created_at < cutoff).limit(limit)
        searches = self.session.execute(delete(SearchLog).where(SearchLog.id.in_(old_searches))
                                        .execution_options(synchronize_session=False))
        return max(cast(CursorResult, events).rowcount, cast(CursorResult, searches).rowcount)

    def tenants_with_feedback_since(self, since: datetime) -> list[str]:
        """For the periodic popularity refresh, which visits every tenant with recent feedback."""
        return list(self.session.scalars(select(FeedbackEvent.tenant_id).where(FeedbackEvent.created_at >= since)
                                         .distinct()))
