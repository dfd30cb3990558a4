"""Events in batches: each checked against its tenant's search log on its own, stored once, the bad ones
reported by index and code while the others are kept."""

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import func, select

from trooply.db import Database
from trooply.errors import InvalidRequest
from trooply.feedback.models import FeedbackEvent
from trooply.feedback.schemas import MAX_EVENTS_PER_CALL, FeedbackIn
from trooply.feedback.service import FeedbackService
from trooply.search.log_writer import SearchLogWriter
from trooply.search.models import SearchLog
from trooply.tenancy.service import TenantService

AT = datetime(2026, 12, 1, 10, 30)


@pytest.fixture
def db(tmp_path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'events.db'}")
    database.migrate()
    yield database
    database.close()


@pytest.fixture
def shops(db: Database) -> tuple[str, str]:
    tenants = TenantService(db)
    shop, other = tenants.create_tenant("shop", "free").tenant_id, tenants.create_tenant("other", "free").tenant_id
    with db.session() as session:
        session.add(SearchLog(id="s1", tenant_id=shop, mode="text", product_ids=["a", "b", "c"], took_ms=1.0,
                              created_at=AT))
        session.add(SearchLog(id="s2", tenant_id=shop, mode="image", product_ids=["c"], took_ms=1.0, created_at=AT))
        session.add(SearchLog(id="theirs", tenant_id=other, mode="text", product_ids=["a"], took_ms=1.0,
                              created_at=AT))
    return shop, other


def stored(db: Database, tenant_id: str) -> list[tuple]:
    with db.session() as session:
        return list(session.execute(select(FeedbackEvent.search_id, FeedbackEvent.product_id, FeedbackEvent.event,
                                           FeedbackEvent.position, FeedbackEvent.value, FeedbackEvent.currency)
                                    .where(FeedbackEvent.tenant_id == tenant_id).order_by(FeedbackEvent.id)))


def test_good_events_are_stored_and_bad_ones_reported_by_index(db: Database, shops) -> None:
    shop, _ = shops
    service = FeedbackService(db, SearchLogWriter(db))
    report = service.record_events(shop, [
        {"type": "click", "search_id": "s1", "product_id": "b", "position": 1, "event_id": "e1"},
        {"type": "purchase", "search_id": "s1", "product_id": "b", "position": 1, "value": 49.5, "currency": "EUR",
         "user_token": "shopper-7"},
        {"type": "click", "search_id": "theirs", "product_id": "a", "position": 0},   # another tenant's search
        {"type": "click", "search_id": "s2", "product_id": "a", "position": 0},       # not in its results
        {"type": "wishlist", "search_id": "s1", "product_id": "a", "position": 0},    # unknown type
        {"type": "click", "search_id": "s1", "product_id": "a", "position": "0"},     # a string, not a number
        {"type": "purchase", "search_id": "s1", "product_id": "c", "position": 2, "value": 3.0},  # no currency
        "not an event",
        {"type": "click", "search_id": "s2", "product_id": "c", "position": 0},
    ])
    assert (report.accepted, report.duplicates) == (3, 0)
    assert [(r.index, r.code) for r in report.rejected] == [
        (2, "unknown_search"), (3, "product_not_in_search"), (4, "validation_error"), (5, "validation_error"),
        (6, "currency_required"), (7, "validation_error")]
    assert "type" in report.rejected[2].message
    assert stored(db, shop) == [("s1", "b", "click", 1, None, None), ("s1", "b", "purchase", 1, 49.5, "EUR"),
                                ("s2", "c", "click", 0, None, None)]


def test_an_event_sent_again_is_acknowledged_and_not_counted(db: Database, shops) -> None:
    shop, _ = shops
    service = FeedbackService(db, SearchLogWriter(db))
    click = {"type": "click", "search_id": "s1", "product_id": "a", "position": 0, "event_id": "evt-1"}
    assert service.record_events(shop, [click]).accepted == 1
    again = service.record_events(shop, [click, click | {"event_id": "evt-2"},   # same action on the same result
                                         {**click, "product_id": "b", "position": 1, "event_id": "evt-1"}])
    assert (again.accepted, again.duplicates, again.rejected) == (0, 3, [])
    within = service.record_events(shop, [click | {"product_id": "c", "position": 2, "event_id": "evt-9"}] * 2)
    assert (within.accepted, within.duplicates) == (1, 1)
    assert len(stored(db, shop)) == 2


def test_more_than_a_thousand_events_store_nothing(db: Database, shops) -> None:
    shop, _ = shops
    click = {"type": "click", "search_id": "s1", "product_id": "a", "position": 0}
    with pytest.raises(InvalidRequest) as refused:
        FeedbackService(db, SearchLogWriter(db)).record_events(shop, [click] * (MAX_EVENTS_PER_CALL + 1))
    assert refused.value.code == "too_many_events"
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(FeedbackEvent)) == 0


def test_the_one_event_form_keeps_its_answers(db: Database, shops) -> None:
    shop, _ = shops
    service = FeedbackService(db, SearchLogWriter(db))
    click = FeedbackIn(search_id="s1", product_id="a", event="click", position=0)
    assert service.record(shop, click) is True
    assert service.record(shop, click) is False
    with pytest.raises(InvalidRequest) as unknown:
        service.record(shop, FeedbackIn(search_id="theirs", product_id="a", event="click", position=0))
    assert unknown.value.code == "unknown_search"
