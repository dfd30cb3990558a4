"""Shopper feedback on search results: validated against the search log, stored once per event."""

from sqlalchemy.exc import IntegrityError

from trooply.db import Database
from trooply.errors import InvalidRequest
from trooply.feedback.models import FeedbackEvent
from trooply.feedback.repository import FeedbackRepository
from trooply.feedback.schemas import FeedbackIn
from trooply.search.log_writer import SearchLogWriter


class FeedbackService:
    def __init__(self, db: Database, log_writer: SearchLogWriter) -> None:
        self.db = db
        self.log_writer = log_writer

    def record(self, tenant_id: str, feedback: FeedbackIn) -> bool:
        """Stores the event; False when the same event on the same result was already stored."""
        returned = self._returned_ids(tenant_id, feedback.search_id)
        if returned is None:
            self.log_writer.flush()  # the search may be seconds old and its row still queued
            returned = self._returned_ids(tenant_id, feedback.search_id)
        if returned is None:
            # Another tenant's search reads exactly like a missing one: nothing leaks across tenants.
            raise InvalidRequest(f"no search {feedback.search_id!r}", code="unknown_search")
        if feedback.product_id not in returned:
            raise InvalidRequest(f"product {feedback.product_id!r} was not in the results of that search",
                                 code="product_not_in_search")
        try:
            with self.db.session() as session:
                FeedbackRepository(session, tenant_id).add_event(FeedbackEvent(**feedback.model_dump()))
        except IntegrityError:
            return False
        return True

    def _returned_ids(self, tenant_id: str, search_id: str) -> list[str] | None:
        with self.db.session() as session:
            return FeedbackRepository(session, tenant_id).returned_ids(search_id)
