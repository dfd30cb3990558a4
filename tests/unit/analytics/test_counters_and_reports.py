"""Analytics counted as searches and events are written, read back over a window: the overview's rates, the
query and product tables, the split by mode and profile, and what retention drops."""

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from trooply.analytics.counting import normalise_query
from trooply.analytics.models import QueryDay, SearchBucket
from trooply.analytics.repository import AnalyticsRepository, AnalyticsRetention
from trooply.analytics.service import AnalyticsService
from trooply.db import Database
from trooply.errors import InvalidRequest
from trooply.feedback.service import FeedbackService
from trooply.search.log_writer import SearchLogWriter
from trooply.search.models import SearchLog
from trooply.tenancy.service import TenantService

DAY1 = datetime(2026, 12, 1, 9, 15)
DAY2 = datetime(2026, 12, 2, 18, 40)


@pytest.fixture
def db(tmp_path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'analytics.db'}")
    database.migrate()
    yield database
    database.close()


def searched(writer: SearchLogWriter, tenant_id: str, search_id: str, at: datetime, results: list[str],
             mode: str = "text", profile: str | None = "footwear", query: str | None = None) -> None:
    writer.write(SearchLog(id=search_id, tenant_id=tenant_id, mode=mode, profile=profile, product_ids=results,
                           took_ms=3.0, created_at=at, query=normalise_query(query)))


@pytest.fixture
def shop(db: Database) -> tuple[str, str]:
    tenants = TenantService(db)
    shop, other = tenants.create_tenant("shop", "free").tenant_id, tenants.create_tenant("other", "free").tenant_id
    writer = SearchLogWriter(db)
    searched(writer, shop, "s1", DAY1, ["a", "b", "c"], query="Red  Sneaker")
    searched(writer, shop, "s2", DAY1, ["b", "c"], query="red sneaker")
    searched(writer, shop, "s3", DAY1, [], query="purple tuxedo")
    searched(writer, shop, "s4", DAY2, ["c", "a"], mode="image", profile=None)
    searched(writer, shop, "s5", DAY2, ["a"], query="boots")
    searched(writer, other, "o1", DAY1, ["a"], query="red sneaker")  # another tenant's: never in the shop's numbers
    writer.flush()
    events = FeedbackService(db, writer)
    report = events.record_events(shop, [
        {"type": "click", "search_id": "s1", "product_id": "c", "position": 2},
        {"type": "click", "search_id": "s1", "product_id": "a", "position": 0},
        {"type": "add_to_cart", "search_id": "s1", "product_id": "c", "position": 2},
        {"type": "purchase", "search_id": "s1", "product_id": "c", "position": 2, "value": 40.0, "currency": "EUR"},
        {"type": "click", "search_id": "s4", "product_id": "a", "position": 1},
        {"type": "purchase", "search_id": "s4", "product_id": "a", "position": 1, "value": 12.5, "currency": "USD"},
        {"type": "purchase", "search_id": "s5", "product_id": "a", "position": 0, "value": 10.0, "currency": "EUR"},
    ])
    assert report.accepted == 7
    events.record_events(other, [{"type": "click", "search_id": "o1", "product_id": "a", "position": 0}])
    return shop, other


def test_queries_are_kept_normalised() -> None:
    assert normalise_query("  Red \t SNEAKER\n") == "red sneaker"
    assert normalise_query("   ") is None and normalise_query(None) is None
    assert len(normalise_query("x" * 500) or "") == 200


def test_the_overview_counts_rates_positions_and_revenue(db: Database, shop) -> None:
    tenant, _ = shop
    service = AnalyticsService(db, retention_days=400)
    overview = service.overview(tenant, datetime(2026, 12, 1), datetime(2026, 12, 3), "day")
    totals = overview.totals
    assert (totals.searches, totals.zero_results, totals.clicks, totals.add_to_carts, totals.purchases) == (
        5, 1, 3, 1, 3)
    assert totals.zero_result_rate == 0.2
    assert totals.click_through_rate == 0.4  # s1 and s4 were clicked: 2 of 5 searches
    assert totals.average_click_position == 2.0  # 0-based 2, 0 and 1: the second result on average
    assert totals.add_to_cart_rate == 0.2 and totals.conversion_rate == 0.6
    assert totals.revenue == {"EUR": 50.0, "USD": 12.5}
    assert [(point.start, point.searches, point.clicks) for point in overview.series] == [
        (datetime(2026, 12, 1), 3, 2), (datetime(2026, 12, 2), 2, 1)]
    assert overview.series[1].revenue == {"USD": 12.5, "EUR": 10.0}
    assert {mode: m.searches for mode, m in overview.by_mode.items()} == {"text": 4, "image": 1}
    assert {profile: m.searches for profile, m in overview.by_profile.items()} == {"footwear": 4, "none": 1}
    hourly = service.overview(tenant, datetime(2026, 12, 1, 9), datetime(2026, 12, 1, 11), "hour")
    assert [point.searches for point in hourly.series] == [3, 0]


def test_query_tables_sort_by_count_no_results_and_no_clicks(db: Database, shop) -> None:
    tenant, _ = shop
    service = AnalyticsService(db, retention_days=400)
    start, end = datetime(2026, 12, 1), datetime(2026, 12, 3)
    top = service.queries(tenant, start, end, "count", 10).queries
    assert [(q.query, q.searches, q.clicks) for q in top] == [("red sneaker", 2, 2), ("boots", 1, 0),
                                                              ("purple tuxedo", 1, 0)]
    assert top[0].click_through_rate == 0.5  # one of its two searches was clicked
    assert [q.query for q in service.queries(tenant, start, end, "no_results", 10).queries] == ["purple tuxedo"]
    assert [q.query for q in service.queries(tenant, start, end, "no_clicks", 10).queries] == ["boots",
                                                                                               "purple tuxedo"]
    products = service.products(tenant, start, end, "conversions", 10).products
    assert [(p.product_id, p.clicks, p.purchases) for p in products] == [("a", 2, 2), ("c", 1, 1)]


def test_windows_and_sorts_are_checked_and_name_the_parameter(db: Database) -> None:
    service = AnalyticsService(db, retention_days=30)
    cases = [(lambda: service.window("yesterday", None), "from"), (lambda: service.window(None, "2026-13-01"), "to"),
             (lambda: service.window("2026-12-02", "2026-12-01"), "to"),
             (lambda: service.window("2026-01-01", "2026-12-01"), "from"),
             (lambda: service.queries("t", DAY1, DAY2, "best", 10), "sort"),
             (lambda: service.products("t", DAY1, DAY2, "views", 10), "sort"),
             (lambda: service.overview("t", DAY1, DAY2, "week"), "interval")]
    for call, parameter in cases:
        with pytest.raises(InvalidRequest) as refused:
            call()
        assert refused.value.details == {"parameter": parameter}
    assert service.window("2026-12-01", "2026-12-02T12:00:00+02:00") == (datetime(2026, 12, 1),
                                                                         datetime(2026, 12, 2, 10))


def test_retention_drops_counters_older_than_it(db: Database, shop) -> None:
    with db.session() as session:
        dropped = AnalyticsRetention(session).drop_counters_before(int(DAY2.timestamp()) // 3600 - 2)
        assert dropped > 0
        assert session.scalar(select(func.count()).select_from(QueryDay).where(QueryDay.day < 20424)) == 0
        assert session.scalar(select(func.count()).select_from(SearchBucket)) > 0  # day 2's are kept


def test_a_window_is_widened_to_whole_intervals_and_says_so(db: Database, shop) -> None:
    tenant, _ = shop
    service = AnalyticsService(db, 400)
    overview = service.overview(tenant, DAY1 - timedelta(days=6), DAY1 + timedelta(hours=1), "day")
    assert (overview.start, overview.end) == (datetime(2026, 11, 25), datetime(2026, 12, 2))
    assert len(overview.series) == 7 and overview.totals.searches == 3  # day 2 is outside
    report = service.queries(tenant, DAY2, DAY2 + timedelta(minutes=1), "count", 10)
    assert (report.start, report.end) == (datetime(2026, 12, 2), datetime(2026, 12, 3))
    assert [q.query for q in report.queries] == ["boots"]


def test_the_sweep_drops_raw_rows_past_retention_and_keeps_the_counts(db: Database, shop) -> None:
    from trooply.config import AnalyticsSettings
    from trooply.feedback.models import FeedbackEvent
    from trooply.feedback.retention import RetentionSweep

    tenant, _ = shop
    writer = SearchLogWriter(db)
    searched(writer, tenant, "fresh", datetime.now().replace(microsecond=0), ["a"], query="fresh")
    writer.flush()
    before = AnalyticsService(db, 400).overview(tenant, datetime(2026, 12, 1), datetime(2026, 12, 3), "day").totals
    # Everything of December 1st and 2nd is older than 3 days (the test runs later than that) but younger than 400.
    sweep = RetentionSweep(db, AnalyticsSettings(raw_retention_days=3, retention_days=400), batch_rows=2)
    assert sweep.run() > 0
    with db.session() as session:
        assert list(session.scalars(select(SearchLog.id).where(SearchLog.tenant_id == tenant))) == ["fresh"]
        assert session.scalar(select(func.count()).select_from(FeedbackEvent)) == 8  # each row by its own age
        session.execute(update(FeedbackEvent).values(created_at=datetime(2026, 12, 2)))
    assert sweep.run() == 8
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(FeedbackEvent)) == 0
    after = AnalyticsService(db, 400).overview(tenant, datetime(2026, 12, 1), datetime(2026, 12, 3), "day").totals
    assert after == before
    assert sweep.run() == 0  # nothing left to do


class CountingRepository(AnalyticsRepository):
    """The real repository, remembering whether the report fell back to summing every query."""

    full_sums = 0

    def top_queries(self, *args, **kwargs):
        CountingRepository.full_sums += 1
        return super().top_queries(*args, **kwargs)


@pytest.mark.parametrize("sort", ["count", "no_results", "no_clicks"])
def test_the_pruned_top_queries_equal_summing_every_query(db: Database, shop, sort) -> None:
    import numpy as np

    from trooply.analytics.service import top_queries

    tenant, _ = shop
    rng = np.random.default_rng(5)
    rows = {}
    for day in range(20000, 20010):  # ten days, a long tail of 3,000 queries, a few heavy ones
        for rank in {int(r) for r in rng.zipf(1.3, 6000) % 3000}:
            searches = int(6000 / (rank + 1) ** 1.1) + 1
            rows[(day, f"q{rank}")] = {"searches": searches, "zero_results": searches if rank % 5 == 0 else 0,
                                       "searches_clicked": 0 if rank % 3 == 0 else searches // 2, "clicks": searches}
    # One query seen every day just under each day's leaders: summed, it must still be placed right.
    for day in range(20000, 20010):
        rows[(day, "steady")] = {"searches": 40, "zero_results": 40, "searches_clicked": 0, "clicks": 0}
    with db.session() as session:
        AnalyticsRepository(session, tenant).add({QueryDay: rows})
    for limit in (5, 50, 400):
        with db.session() as session:
            CountingRepository.full_sums = 0
            pruned = top_queries(CountingRepository(session, tenant), 20000, 20010, sort, limit)
            used_full_sums = CountingRepository.full_sums
            exact = AnalyticsRepository(session, tenant).top_queries(20000, 20010, sort, limit)
        assert [tuple(row) for row in pruned] == [tuple(row) for row in exact]
        if limit == 5:
            assert used_full_sums == 0, "a skewed month is answered from the day leaders"
