"""What each search and event adds to the analytics counters: pure functions from facts to increments, so
that the writers (the search log writer, the events service) add a whole batch in a few upserts."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from trooply.analytics.models import ProductDay, QueryDay, RevenueBucket, SearchBucket
from trooply.db import Base

MAX_QUERY_CHARS = 200
# Counter columns per table, and which an event type adds to (searches_x: the search's first event of the type).
EVENT_COLUMNS = {"click": ("searches_clicked", "clicks"), "add_to_cart": ("searches_carted", "add_to_carts"),
                 "purchase": ("searches_purchased", "purchases")}
PRODUCT_COLUMNS = {"click": "clicks", "add_to_cart": "add_to_carts", "purchase": "purchases"}


def normalise_query(text: str | None) -> str | None:
    """A text query as analytics keeps it: lower case, spaces folded, at most MAX_QUERY_CHARS; None when empty."""
    folded = " ".join((text or "").lower().split())[:MAX_QUERY_CHARS].strip()
    return folded or None


def epoch_hour(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp()) // 3600


@dataclass(frozen=True)
class SearchFact:
    at: datetime
    mode: str
    profile: str | None
    results: int
    query: str | None  # normalised, or None (an image query, or text kept out by TROOPLY_ANALYTICS_QUERY_TEXT)


@dataclass(frozen=True)
class EventFact:
    search: SearchFact
    type: str
    product_id: str
    position: int
    first_of_type: bool  # the search had no event of this type before
    value: float | None = None
    currency: str | None = None


# table ▸ its key (without the tenant) ▸ column ▸ amount to add
Increments = dict[type[Base], dict[tuple, dict[str, float]]]


def _increments() -> Increments:
    return defaultdict(lambda: defaultdict(lambda: defaultdict(float)))  # type: ignore[arg-type]


def search_increments(searches: Iterable[SearchFact]) -> Increments:
    added = _increments()
    for search in searches:
        hour = epoch_hour(search.at)
        bucket = added[SearchBucket][(hour, search.mode, search.profile or "")]
        bucket["searches"] += 1
        bucket["zero_results"] += search.results == 0
        if search.query is not None:
            query = added[QueryDay][(hour // 24, search.query)]
            query["searches"] += 1
            query["zero_results"] += search.results == 0
    return added


def event_increments(events: Iterable[EventFact]) -> Increments:
    added = _increments()
    for event in events:
        search = event.search
        hour = epoch_hour(search.at)
        first_column, count_column = EVENT_COLUMNS[event.type]
        bucket = added[SearchBucket][(hour, search.mode, search.profile or "")]
        bucket[first_column] += event.first_of_type
        bucket[count_column] += 1
        if event.type == "click":
            bucket["click_position_sum"] += event.position
            if search.query is not None:
                query = added[QueryDay][(hour // 24, search.query)]
                query["searches_clicked"] += event.first_of_type
                query["clicks"] += 1
        added[ProductDay][(hour // 24, event.product_id)][PRODUCT_COLUMNS[event.type]] += 1
        if event.type == "purchase" and event.currency is not None:
            revenue = added[RevenueBucket][(hour, event.currency)]
            revenue["purchases"] += 1
            revenue["revenue"] += event.value or 0.0
    return added
