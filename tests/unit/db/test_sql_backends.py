"""Migrations and repositories on both SQL engines: SQLite (embedded) and PostgreSQL (compose, Kubernetes)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

import trooply.models  # noqa: F401
from tests.conftest import make_settings
from tests.support.postgres import postgres_server
from trooply.catalog.repository import CatalogRepository
from trooply.catalog.schemas import ProductIn
from trooply.catalog.service import CatalogService
from trooply.db import Base, Database
from trooply.errors import NotFound, QuotaExceeded
from trooply.feedback.schemas import FeedbackIn
from trooply.feedback.service import FeedbackService
from trooply.search.log_writer import SearchLogWriter
from trooply.search.models import SearchLog
from trooply.tasks.queue import InProcessQueue
from trooply.tenancy.service import TenantService
from trooply.tenancy.usage import UsageService


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    database = Database(url)
    database.migrate()
    yield database
    with database.engine.begin() as connection:  # PostgreSQL is shared by the module: start each test clean
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    database.close()


def test_migrations_build_the_models_schema(db):
    db.migrate()
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_tenants_keys_products_jobs_and_quota(db, tmp_path):
    settings = make_settings(tmp_path, free_plan_max_products=2)
    tenants = TenantService(db)
    creds, other = tenants.create_tenant("shop", "free"), tenants.create_tenant("other", "free")
    assert tenants.authenticate(creds.secret_key).tenant_id == creds.tenant_id
    catalog = CatalogService(db, None, InProcessQueue(1), settings, lambda category: None)
    products = [ProductIn(id=f"p{i}", image_url=f"http://127.0.0.1:9/{i}.png", category="shoes") for i in range(3)]
    submission = catalog.submit(creds.tenant_id, products)
    assert [p.status for p in submission.products] == ["pending", "pending", "rejected"]
    with pytest.raises(QuotaExceeded):
        catalog.submit(creds.tenant_id, products[2:])
    job = catalog.job(creds.tenant_id, submission.job_id)
    assert job["counts"] == {"pending": 2, "indexed": 0, "failed": 0} and job["total"] == 2
    assert [r.id for r in catalog.list(creds.tenant_id, "pending", 10, None)] == ["p0", "p1"]
    assert catalog.list(other.tenant_id, None, 10, None) == []
    with db.session() as session:
        assert CatalogRepository(session, other.tenant_id).get_product("p0") is None
    assert catalog.resume_unfinished() == 2


def test_catalogue_stats_retry_resume_and_recent_jobs(db, tmp_path):
    tenants = TenantService(db)
    creds, other = tenants.create_tenant("shop", "free"), tenants.create_tenant("other", "free")
    catalog = CatalogService(db, None, InProcessQueue(1), make_settings(tmp_path), lambda category: None)
    products = [ProductIn(id=f"p{i}", image_url=f"http://127.0.0.1:9/{i}.png", category=category)
                for i, category in enumerate(["shoes", "shoes", "bags", None])]
    first = catalog.submit(creds.tenant_id, products)
    with db.session() as session:  # as the ingest worker leaves them: two indexed, one failed
        for record in CatalogRepository(session, creds.tenant_id).get_products(["p0", "p1", "p2"]).values():
            record.status, record.error_code = ("failed", "image_not_found") if record.id == "p2" else ("indexed", None)
    stats = catalog.stats(creds.tenant_id, "free")
    assert stats["counts"] == {"pending": 1, "indexed": 2, "failed": 1} and stats["total"] == 4
    assert stats["failures"] == {"image_not_found": 1}
    assert stats["categories"] == [{"category": "shoes", "count": 2}, {"category": "bags", "count": 1}]
    assert catalog.stats(other.tenant_id, "free")["total"] == 0

    # Resuming: stored products as they are go unqueued, a failed one goes again.
    again = catalog.submit(creds.tenant_id, products, skip_unchanged=True)
    assert [p.status for p in again.products] == ["unchanged", "unchanged", "pending", "unchanged"]
    retried = catalog.retry_failed(creds.tenant_id, None)
    assert (retried["requeued"], retried["skipped"]) == (0, [])  # p2 is pending again
    assert [job["job_id"] for job in catalog.recent_jobs(creds.tenant_id, 5)] == [again.job_id, first.job_id]
    assert catalog.recent_jobs(other.tenant_id, 5) == []


def test_search_logs_feedback_once_and_usage_counters(db, tmp_path):
    creds = TenantService(db).create_tenant("shop", "pro")
    writer = SearchLogWriter(db)
    writer.write(SearchLog(id="srch_1", tenant_id=creds.tenant_id, mode="text", product_ids=["a", "b"], took_ms=3.0))
    feedback = FeedbackService(db, writer)
    event = FeedbackIn(search_id="srch_1", product_id="b", event="purchase", position=1)
    assert feedback.record(creds.tenant_id, event) is True
    assert feedback.record(creds.tenant_id, event) is False  # the unique constraint makes repeats harmless
    with db.session() as session:
        assert session.scalars(select(SearchLog.product_ids)).one() == ["a", "b"]
    writer.close()
    usage = UsageService(db, make_settings(tmp_path))
    for endpoint in ("detect", "embed", "embed"):
        usage.consume(creds.tenant_id, endpoint)
    assert usage.report(creds.tenant_id, "pro")["counts"] == {"detect": 1, "embed": 2}


def test_a_deleted_tenant_queues_nothing_and_counts_no_usage(db, tmp_path):
    """A key cached a moment before the deletion still authenticates in another process: the write paths must
    refuse the tenant themselves."""
    settings = make_settings(tmp_path)
    tenants = TenantService(db)
    creds = tenants.create_tenant("leaving", "pro")
    assert tenants.mark_deleted(creds.tenant_id)
    catalog = CatalogService(db, None, InProcessQueue(1), settings, lambda category: None)
    with pytest.raises(NotFound) as refused:
        catalog.submit(creds.tenant_id, [ProductIn(id="p1", image_url="http://127.0.0.1:9/1.png")])
    assert refused.value.code == "tenant_not_found"
    with pytest.raises(NotFound) as refused:
        UsageService(db, settings).consume(creds.tenant_id, "detect")
    assert refused.value.code == "tenant_not_found"
    with db.session() as session:
        assert CatalogRepository(session, creds.tenant_id).count_products() == 0


def test_plan_cap_holds_under_concurrent_submissions(db, tmp_path):
    """8 submissions of 200 at once against a 1,000-product plan: exactly 1,000 held, never more."""
    tenant = TenantService(db).create_tenant("busy", "free")
    catalog = CatalogService(db, None, InProcessQueue(1), make_settings(tmp_path), lambda category: None)
    start = threading.Barrier(8)

    def submit(batch: int) -> int:
        products = [ProductIn(id=f"b{batch}-{i}", image_url=f"http://127.0.0.1:9/{i}.png") for i in range(200)]
        start.wait()
        try:
            return catalog.submit(tenant.tenant_id, products).accepted
        except QuotaExceeded:
            return 0

    with ThreadPoolExecutor(8) as pool:
        accepted = sum(pool.map(submit, range(8)))
    with db.session() as session:
        held = CatalogRepository(session, tenant.tenant_id).count_products()
    assert accepted == held == 1000


def test_two_syncs_of_one_tenant_taken_at_once_run_one_at_a_time(db):
    """Two workers take two syncs of one account together: on PostgreSQL the second waits for the first's
    transaction (the tenant's row), then sees its sync running and does not take its own."""
    from datetime import timedelta

    from trooply.db import utcnow
    from trooply.feeds.models import Feed, FeedSync
    from trooply.feeds.repository import FeedRepository

    tenant = TenantService(db).create_tenant("shop", "free").tenant_id
    with db.session() as session:
        repo = FeedRepository(session, tenant)
        for n in (1, 2):
            repo.add(Feed(id=f"feed_{n}", url="https://x.example/f", format="auto", schedule="manual",
                          delete_missing=False, syncs_started=0))
            session.flush()
            repo.add(FeedSync(id=f"fsync_{n}", feed_id=f"feed_{n}", number=0, trigger="manual", status="pending",
                              counts={}, failed_by_code={}, rejected=[], jobs=[], bytes=0))
    fresh = utcnow() - timedelta(minutes=15)
    first = db.session()
    session = first.__enter__()
    assert FeedRepository(session, tenant).take_sync("fsync_1", fresh)  # not committed yet
    second_started = threading.Event()

    def take_second() -> bool:
        with db.session() as other:
            second_started.set()
            return FeedRepository(other, tenant).take_sync("fsync_2", fresh)

    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(take_second)
        second_started.wait(10)
        if db.engine.dialect.name == "postgresql":
            time.sleep(1.0)  # time for the second take to run: it waits on the tenant's row, it does not answer
            assert not second.done() or not second.result()
        first.__exit__(None, None, None)  # commits the first worker's take
        assert second.result(timeout=30) is False
