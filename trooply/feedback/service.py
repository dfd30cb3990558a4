"""Shopper events on search results (clicks, add-to-cart, purchases): each checked against the search log on
its own, stored once (by the sender's event_id, and by search, product and type), in batches of up to 1,000, and
added to the analytics counters of their search in the same transaction."""

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from trooply.analytics.counting import EventFact, SearchFact, event_increments
from trooply.analytics.repository import AnalyticsRepository
from trooply.db import Database
from trooply.errors import InvalidRequest
from trooply.feedback.models import FeedbackEvent
from trooply.feedback.repository import FeedbackRepository, LoggedSearch
from trooply.feedback.schemas import MAX_EVENTS_PER_CALL, EventIn, EventRejection, EventsReport, FeedbackIn
from trooply.search.log_writer import SearchLogWriter


class FeedbackService:
    def __init__(self, db: Database, log_writer: SearchLogWriter) -> None:
        self.db = db
        self.log_writer = log_writer

    def record(self, tenant_id: str, feedback: FeedbackIn) -> bool:
        """The one-event form (POST /v1/search/feedback): False when the same event was already stored."""
        event = EventIn(type=feedback.event, search_id=feedback.search_id, product_id=feedback.product_id,
                        position=feedback.position)
        report = self._record(tenant_id, [event])
        if report.rejected:
            raise InvalidRequest(report.rejected[0].message, code=report.rejected[0].code)
        return report.accepted == 1

    def record_events(self, tenant_id: str, raw_events: Sequence[dict[str, Any]]) -> EventsReport:
        """POST /v1/events: every event checked on its own; the valid ones stored, the others reported."""
        if len(raw_events) > MAX_EVENTS_PER_CALL:
            raise InvalidRequest(f"at most {MAX_EVENTS_PER_CALL} events a call; this one has {len(raw_events)}",
                                 code="too_many_events", details={"max": MAX_EVENTS_PER_CALL})
        parsed: list[EventIn | EventRejection] = [_parse(index, raw) for index, raw in enumerate(raw_events)]
        return self._record(tenant_id, parsed)

    def _record(self, tenant_id: str, parsed: Sequence[EventIn | EventRejection]) -> EventsReport:
        valid = [event for event in parsed if isinstance(event, EventIn)]
        searches = self._searches(tenant_id, {event.search_id for event in valid})
        try:
            return self._store(tenant_id, parsed, searches)
        except IntegrityError:  # a concurrent call stored one of the same events first: check again against it
            return self._store(tenant_id, parsed, searches)

    def _searches(self, tenant_id: str, search_ids: set[str]) -> dict[str, LoggedSearch]:
        with self.db.session() as session:
            found = FeedbackRepository(session, tenant_id).logged_searches(search_ids)
        if len(found) < len(search_ids):
            self.log_writer.flush()  # a search may be seconds old and its row still queued
            with self.db.session() as session:
                found = FeedbackRepository(session, tenant_id).logged_searches(search_ids)
        return found

    def _store(self, tenant_id: str, parsed: Sequence[EventIn | EventRejection],
               searches: dict[str, LoggedSearch]) -> EventsReport:
        rejected: list[EventRejection] = []
        stored: list[EventFact] = []
        duplicates = 0
        with self.db.session() as session:
            repo = FeedbackRepository(session, tenant_id)
            events = [event for event in parsed if isinstance(event, EventIn)]
            seen_ids = repo.stored_event_ids({e.event_id for e in events if e.event_id is not None})
            seen_actions = repo.stored_actions({e.search_id for e in events if e.search_id in searches})
            seen_types = {(search_id, event) for search_id, _, event in seen_actions}
            for index, event in enumerate(parsed):
                if isinstance(event, EventRejection):
                    rejected.append(event)
                    continue
                problem = _problem(event, searches.get(event.search_id))
                if problem is not None:
                    rejected.append(EventRejection(index=index, code=problem[0], message=problem[1]))
                    continue
                action = (event.search_id, event.product_id, event.type)
                if event.event_id in seen_ids or action in seen_actions:
                    duplicates += 1
                    continue
                seen_actions.add(action)
                if event.event_id is not None:
                    seen_ids.add(event.event_id)
                first = (event.search_id, event.type) not in seen_types
                seen_types.add((event.search_id, event.type))
                repo.add_event(FeedbackEvent(search_id=event.search_id, product_id=event.product_id, event=event.type,
                                             position=event.position, event_id=event.event_id, value=event.value,
                                             currency=event.currency, user_token=event.user_token))
                stored.append(_fact(event, searches[event.search_id], first))
            AnalyticsRepository(session, tenant_id).add(event_increments(stored))
        return EventsReport(accepted=len(stored), duplicates=duplicates, rejected=rejected)


def _fact(event: EventIn, search: LoggedSearch, first_of_type: bool) -> EventFact:
    searched = SearchFact(search.created_at, search.mode, search.profile, len(search.product_ids), search.query)
    return EventFact(searched, event.type, event.product_id, event.position, first_of_type, event.value,
                     event.currency)


def _parse(index: int, raw: Any) -> EventIn | EventRejection:
    try:
        return EventIn.model_validate(raw)
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "event"
        return EventRejection(index=index, code="validation_error", message=f"{field}: {problem['msg']}")


def _problem(event: EventIn, search: LoggedSearch | None) -> tuple[str, str] | None:
    if search is None:
        # Another tenant's search reads exactly like a missing one: nothing leaks across tenants.
        return "unknown_search", f"no search {event.search_id!r}"
    if event.product_id not in search.product_ids:
        return "product_not_in_search", f"product {event.product_id!r} was not in the results of that search"
    if (event.value is None) != (event.currency is None):
        return "currency_required", "value and currency go together"
    return None
