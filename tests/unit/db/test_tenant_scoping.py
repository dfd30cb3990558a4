"""Tenant-scoped repositories cannot leak: every method called for tenant A, even with tenant B's ids, reads
only A's rows and leaves B's exactly as they were."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

import trooply.models  # noqa: F401  (every table, for create_all)
from trooply.admin.repository import TENANT_TABLES, TenantPurgeRepository
from trooply.analytics.counting import SearchFact, search_increments
from trooply.analytics.models import ProductDay, QueryDay, RevenueBucket, SearchBucket
from trooply.analytics.repository import AnalyticsRepository
from trooply.catalog.models import FAILED, INDEXED, PENDING, IngestItem, IngestJob, ProductRecord
from trooply.catalog.repository import CatalogRepository
from trooply.colour_refresh.models import ColourRefresh, ColourRefreshFailure
from trooply.colour_refresh.repository import ColourRefreshRepository
from trooply.db import Base, Database, TenantScopedRepository
from trooply.duplicates.models import COMPLETED, DuplicateScan
from trooply.duplicates.repository import DuplicateScanRepository
from trooply.feedback.models import FeedbackEvent
from trooply.feedback.repository import FeedbackRepository
from trooply.ranking.models import RuleRecord
from trooply.ranking.repository import RuleRepository
from trooply.search.models import SearchLog
from trooply.search.repository import SearchLogRepository
from trooply.tenancy.models import AllowedOrigin, ApiKey, Tenant, UsageCounter
from trooply.tenancy.repository import TenantRepository

A, B = "ten_a", "ten_b"
MONTH = "2026-01"
LONG_AGO = datetime(2000, 1, 1)
AT = datetime(2026, 1, 15)


def _rows_of(tenant: str) -> list[Any]:
    """The same kinds of rows for each tenant; B has more of everything, and shares A's product ids."""
    extra = tenant == B
    products = ["shared", "only_a"] if not extra else ["shared", "b1", "b2"]
    job = f"job_{tenant}"
    return [
        Tenant(id=tenant, name=tenant, plan="free"),
        ApiKey(id=f"key_{tenant}", tenant_id=tenant, kind="secret", key_hash=tenant * 8, prefix="sk_x"),
        AllowedOrigin(tenant_id=tenant, origin=f"https://{tenant}.example"),
        UsageCounter(tenant_id=tenant, period=MONTH, endpoint="detect", count=5 if extra else 1),
        *([UsageCounter(tenant_id=tenant, period=MONTH, endpoint="embed", count=7)] if extra else []),
        *[ProductRecord(tenant_id=tenant, id=pid, image_url=f"http://x/{pid}.png", meta={"category": tenant},
                        status=FAILED if pid == "b2" else INDEXED) for pid in products],
        IngestJob(id=job, tenant_id=tenant, total=2),
        *[IngestItem(job_id=job, product_id=pid, tenant_id=tenant, status=FAILED if pid == "b2" else PENDING)
          for pid in products],
        RuleRecord(id=f"rule_{tenant}", tenant_id=tenant, filters={"brand": "x"}, weight=0.5),
        SearchLog(id=f"srch_{tenant}", tenant_id=tenant, mode="text", product_ids=products, took_ms=1.0, created_at=AT),
        FeedbackEvent(tenant_id=tenant, search_id=f"srch_{tenant}", product_id=products[-1], event="click",
                      position=0, created_at=AT, event_id=f"evt_{tenant}"),
        DuplicateScan(id=f"dup_{tenant}", tenant_id=tenant, threshold=0.9, status=PENDING if extra else COMPLETED,
                      products_scanned=0),
        ColourRefresh(tenant_id=tenant, version=2, status="running" if extra else "pending", total=len(products)),
        ColourRefreshFailure(tenant_id=tenant, product_id=products[-1], code="image_not_found"),
        SearchBucket(tenant_id=tenant, hour=1, mode="text", profile="", searches=9 if extra else 1, zero_results=0,
                     searches_clicked=0, clicks=0, click_position_sum=0, searches_carted=0, add_to_carts=0,
                     searches_purchased=0, purchases=0),
        RevenueBucket(tenant_id=tenant, hour=1, currency="EUR", purchases=1, revenue=9.0 if extra else 1.0),
        QueryDay(tenant_id=tenant, day=0, query=f"{tenant} query", searches=1, zero_results=1, searches_clicked=0,
                 clicks=0),
        ProductDay(tenant_id=tenant, day=0, product_id=products[-1], clicks=1, add_to_carts=0, purchases=1),
    ]


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'scoping.db'}")
    Base.metadata.create_all(database.engine)
    with database.session() as session:
        for row in _rows_of(A) + _rows_of(B):
            session.add(row)
            session.flush()  # in order: the models declare no relationships for the unit of work to sort by
    yield database
    database.close()


def _snapshot(db: Database, tenant: str) -> dict[str, list[tuple]]:
    """Every column of every row the tenant owns, table by table."""
    with db.engine.connect() as connection:
        return {table.name: sorted(map(tuple, connection.execute(
                    select(table).where((table.c.tenant_id if "tenant_id" in table.c else table.c.id) == tenant))))
                for table in Base.metadata.sorted_tables}


def _plain(value: Any) -> Any:
    """Rows as "owner/key", so that an answer shows at a glance whose rows it holds."""
    if isinstance(value, Base):
        owner = value.id if isinstance(value, Tenant) else value.tenant_id  # type: ignore[attr-defined]
        key = next(getattr(value, name) for name in ("product_id", "endpoint", "id") if hasattr(value, name))
        return f"{owner}/{key}"
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


Call = Callable[[Any], Any]
# (repository, method, call with B's ids where a method takes ids, what tenant A must get back)
CASES: list[tuple[type[TenantScopedRepository], str, Call, Any]] = [
    (CatalogRepository, "get_product", lambda r: r.get_product("b1"), None),
    (CatalogRepository, "get_products", lambda r: r.get_products(["shared", "b1"]), {"shared": "ten_a/shared"}),
    (CatalogRepository, "all_products", lambda r: sorted(_plain(r.all_products())), ["ten_a/only_a", "ten_a/shared"]),
    (CatalogRepository, "count_products", lambda r: r.count_products(), 2),
    (CatalogRepository, "list_products", lambda r: r.list_products(None, 10, None), ["ten_a/only_a", "ten_a/shared"]),
    (CatalogRepository, "status_counts", lambda r: r.status_counts(), {INDEXED: 2}),
    (CatalogRepository, "failure_counts", lambda r: r.failure_counts(), {}),
    (CatalogRepository, "category_counts", lambda r: r.category_counts(10), [["ten_a", 2]]),
    (CatalogRepository, "failed_products", lambda r: r.failed_products(["b2"]), []),
    (CatalogRepository, "recent_jobs", lambda r: r.recent_jobs(10), ["ten_a/job_ten_a"]),
    (CatalogRepository, "all_product_ids", lambda r: r.all_product_ids(), ["only_a", "shared"]),
    (CatalogRepository, "lock_products", lambda r: r.lock_products(["shared", "b1"]), None),
    (CatalogRepository, "delete_product", lambda r: (r.delete_product("b1"), r.delete_product("shared")),
     [False, True]),
    (CatalogRepository, "forget_vectors", lambda r: r.forget_vectors(), None),
    (CatalogRepository, "get_job", lambda r: r.get_job("job_ten_b"), None),
    (CatalogRepository, "job_counts", lambda r: r.job_counts("job_ten_b"), {}),
    (CatalogRepository, "failed_items", lambda r: r.failed_items("job_ten_b", 10), []),
    (CatalogRepository, "pending_items", lambda r: r.pending_items("job_ten_b", ["shared", "b1"]), []),
    (RuleRepository, "count", lambda r: r.count(), 1),
    (RuleRepository, "all", lambda r: r.all(), ["ten_a/rule_ten_a"]),
    (RuleRepository, "delete", lambda r: r.delete("rule_ten_b"), False),
    (FeedbackRepository, "returned_ids", lambda r: r.returned_ids("srch_ten_b"), None),
    (FeedbackRepository, "events_since", lambda r: r.events_since(LONG_AGO), [["only_a", "click", AT, 0]]),
    (FeedbackRepository, "impressions_since", lambda r: r.impressions_since(LONG_AGO), [[["shared", "only_a"], AT]]),
    (FeedbackRepository, "logged_searches", lambda r: sorted(r.logged_searches(["srch_ten_a", "srch_ten_b"])),
     ["srch_ten_a"]),
    (FeedbackRepository, "stored_event_ids", lambda r: r.stored_event_ids(["evt_ten_a", "evt_ten_b"]), {"evt_ten_a"}),
    (FeedbackRepository, "stored_actions", lambda r: r.stored_actions(["srch_ten_a", "srch_ten_b"]),
     {("srch_ten_a", "only_a", "click")}),
    (AnalyticsRepository, "add", lambda r: (r.add(search_increments([SearchFact(AT, "text", None, 0, "q")])),
                                              r.search_counts(0, 10 ** 6, 10 ** 6))[-1],
     [[0, "text", "", 2, 1, 0, 0, 0, 0, 0, 0, 0]]),
    (AnalyticsRepository, "search_counts", lambda r: r.search_counts(0, 24, 24), [[0, "text", "", 1, 0, 0, 0, 0, 0,
                                                                                   0, 0, 0]]),
    (AnalyticsRepository, "revenue", lambda r: r.revenue(0, 24, 24), [[0, "EUR", 1, 1.0]]),
    (AnalyticsRepository, "top_queries", lambda r: r.top_queries(0, 1, "no_results", 10),
     [["ten_a query", 1, 1, 0, 0]]),
    (AnalyticsRepository, "day_leaders", lambda r: r.day_leaders(0, "count", 10), [["ten_a query", 1]]),
    (AnalyticsRepository, "query_totals", lambda r: r.query_totals(0, 1, ["ten_a query", "ten_b query"]),
     [["ten_a query", 1, 1, 0, 0]]),
    (AnalyticsRepository, "top_products", lambda r: r.top_products(0, 1, "conversions", 10), [["only_a", 1, 0, 1]]),
    (TenantRepository, "get", lambda r: r.get(), "ten_a/ten_a"),
    (TenantRepository, "lock", lambda r: r.lock(), "ten_a/ten_a"),
    (TenantRepository, "active_keys", lambda r: r.active_keys(), ["ten_a/key_ten_a"]),
    (TenantRepository, "has_active_key", lambda r: (r.has_active_key(A * 8), r.has_active_key(B * 8)), [True, False]),
    (TenantRepository, "revoke_keys", lambda r: r.revoke_keys(), None),
    (TenantRepository, "allowed_origins", lambda r: r.allowed_origins(), ["https://ten_a.example"]),
    (TenantRepository, "replace_origins", lambda r: (r.replace_origins(["https://new.example"]),
                                                      r.allowed_origins())[-1], ["https://new.example"]),
    (TenantRepository, "usage_total", lambda r: r.usage_total(MONTH), 1),
    (TenantRepository, "usage_counts", lambda r: r.usage_counts(MONTH), {"detect": 1}),
    (TenantRepository, "count_usage", lambda r: (r.count_usage(MONTH, "detect"), r.count_usage(MONTH, "embed"),
                                                  r.usage_counts(MONTH))[-1], {"detect": 2, "embed": 1}),
    (DuplicateScanRepository, "get", lambda r: r.get("dup_ten_b"), None),
    (DuplicateScanRepository, "unfinished_with_threshold", lambda r: r.unfinished_with_threshold(0.9), None),
    (DuplicateScanRepository, "update", lambda r: r.update("dup_ten_b", status=FAILED), None),
    (DuplicateScanRepository, "unfinished_count", lambda r: r.unfinished_count(), 0),
    (DuplicateScanRepository, "prune_finished", lambda r: r.prune_finished(0), None),
    (ColourRefreshRepository, "get", lambda r: f"{r.get().tenant_id}/{r.get().status}", "ten_a/pending"),
    (ColourRefreshRepository, "set_status", lambda r: r.set_status("done"), None),
    (ColourRefreshRepository, "indexed_after", lambda r: r.indexed_after(None, 10), ["ten_a/only_a", "ten_a/shared"]),
    (ColourRefreshRepository, "image_urls", lambda r: r.image_urls(["shared", "b1"]), {"shared": "http://x/shared.png"}),
    (ColourRefreshRepository, "advance", lambda r: r.advance(None, "shared", 2, 0), True),
    (ColourRefreshRepository, "finish", lambda r: r.finish(), None),
    (ColourRefreshRepository, "failures", lambda r: [f"{f.tenant_id}/{f.product_id}" for f in r.failures(10)],
     ["ten_a/only_a"]),
    (ColourRefreshRepository, "record_failures", lambda r: (r.record_failures({"b1": ("image_not_found", ""),
                                                                                "only_a": ("image_too_large", "")}),
                                                             [(f.product_id, f.attempts) for f in r.failures(10)])[-1],
     [["b1", 1], ["only_a", 2]]),
    (ColourRefreshRepository, "clear_failures", lambda r: (r.clear_failures(["only_a", "b1"]), r.failures(10))[-1], []),
    (TenantPurgeRepository, "delete_batch", lambda r: sum(r.delete_batch(model, 100) for model in TENANT_TABLES), 18),
]
# Adding rows is covered by test_a_row_of_another_tenant_cannot_be_added.
ADDERS = {"add", "add_all", "add_key", "add_event", "add_job"}


@pytest.mark.parametrize(("repository", "method", "call", "expected"), CASES,
                         ids=[f"{case[0].__name__}.{case[1]}" for case in CASES])
def test_a_scoped_method_sees_and_changes_only_its_tenant(db, repository, method, call, expected):
    before = _snapshot(db, B)
    with db.session() as session:
        answer = _plain(call(repository(session, A)))
    assert answer == expected
    assert _snapshot(db, B) == before


def test_every_scoped_method_is_checked():
    checked = {(case[0], case[1]) for case in CASES}
    for repository in {case[0] for case in CASES}:
        methods = {name for name, value in vars(repository).items() if callable(value) and not name.startswith("_")}
        missing = {(repository, name) for name in methods - ADDERS} - checked
        assert not missing, f"add {repository.__name__}'s new methods to CASES"


@pytest.mark.parametrize("add", [
    lambda s: CatalogRepository(s, A).add(ProductRecord(tenant_id=B, id="new", image_url="http://x/n.png")),
    lambda s: CatalogRepository(s, A).add_job(IngestJob(id="job_new", tenant_id=B, total=0), []),
    lambda s: RuleRepository(s, A).add(RuleRecord(id="rule_new", tenant_id=B, filters={}, weight=1.0)),
    lambda s: FeedbackRepository(s, A).add_event(FeedbackEvent(tenant_id=B, search_id="srch_ten_b",
                                                                product_id="b1", event="purchase", position=0)),
    lambda s: TenantRepository(s, A).add_key(ApiKey(id="key_new", tenant_id=B, kind="secret", key_hash="n",
                                                    prefix="sk_n")),
    lambda s: TenantRepository(s, A).add(Tenant(id=B, name="b", plan="free")),
    lambda s: DuplicateScanRepository(s, A).add(DuplicateScan(id="dup_new", tenant_id=B, threshold=0.5)),
    lambda s: SearchLogRepository(s, A).add_all([SearchLog(id="srch_new", tenant_id=B, mode="text", product_ids=[],
                                                           took_ms=1.0)]),
], ids=["product", "job", "rule", "feedback", "key", "tenant", "scan", "search log"])
def test_a_row_of_another_tenant_cannot_be_added(db, add):
    before = _snapshot(db, B)
    with pytest.raises(ValueError, match="tenant"), db.session() as session:
        add(session)
    assert _snapshot(db, B) == before


def test_a_row_without_a_tenant_is_given_the_repositorys(db):
    with db.session() as session:
        RuleRepository(session, A).add(RuleRecord(id="rule_new", filters={"brand": "y"}, weight=1.0))
    with db.session() as session:
        assert _plain(RuleRepository(session, A).all()) == ["ten_a/rule_ten_a", "ten_a/rule_new"]
