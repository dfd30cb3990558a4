"""Deleting a tenant: its keys stop working at once, and the purge leaves nothing of it in SQL or in either
index engine, also when it is interrupted midway and resumed; other tenants are untouched."""

import time
from collections.abc import Iterator

import numpy as np
import pytest
from qdrant_client import QdrantClient
from sqlalchemy import func, select

import trooply.models  # noqa: F401  (every table, for Base.metadata)
from tests.support.queues import WorkerQueue
from trooply.admin.purge import PurgeInterrupted, TenantPurge
from trooply.admin.repository import TENANT_TABLES
from trooply.admin.service import TenantAdminService
from trooply.analytics.counting import EventFact, SearchFact, event_increments, search_increments
from trooply.analytics.repository import AnalyticsRepository
from trooply.catalog.models import IngestItem, IngestJob, ProductRecord
from trooply.colour_refresh.models import ColourRefresh, ColourRefreshFailure
from trooply.config import Settings
from trooply.db import Base, Database, utcnow
from trooply.duplicates.models import DuplicateScan
from trooply.errors import NotFound, Unauthorized
from trooply.feedback.models import FeedbackEvent
from trooply.feeds.models import Feed, FeedProduct, FeedSync
from trooply.index.base import IndexPoint, VectorIndex
from trooply.index.edge import EdgeIndex
from trooply.index.server import QdrantServerIndex
from trooply.model_migration.models import MigrationFailure, TenantMigration
from trooply.ranking.models import RuleRecord
from trooply.search.models import SearchLog
from trooply.spaces.live import LiveSpaces
from trooply.tasks.names import PURGE_TASK
from trooply.tasks.queue import InProcessQueue
from trooply.tenancy.models import AllowedOrigin, Tenant, UsageCounter
from trooply.tenancy.service import TenantService
from trooply.vectors import VectorSpace

SPACE = VectorSpace("clip-test", 8)
PRODUCTS = 7
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


@pytest.fixture(params=["edge", "server"])
def index(request, tmp_path) -> Iterator[VectorIndex]:
    if request.param == "edge":
        opened: VectorIndex = EdgeIndex(tmp_path / "index", SPACE)
    else:
        opened = QdrantServerIndex(QdrantClient(":memory:"), SPACE)
    yield opened
    opened.close()


@pytest.fixture
def db(tmp_path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'purge.db'}")
    database.migrate()
    yield database
    database.close()


def seed(db: Database, index: VectorIndex, tenant_id: str) -> None:
    """Rows in every tenant table and vectors in the index."""
    with db.session() as session:
        session.add(IngestJob(id=f"job-{tenant_id}", tenant_id=tenant_id, total=PRODUCTS))
        session.flush()
        for i in range(PRODUCTS):
            session.add(ProductRecord(tenant_id=tenant_id, id=f"p{i}", image_url=f"http://127.0.0.1:9/{i}.png"))
            session.add(IngestItem(job_id=f"job-{tenant_id}", product_id=f"p{i}", tenant_id=tenant_id))
            session.add(SearchLog(id=f"s{i}-{tenant_id}", tenant_id=tenant_id, mode="text", product_ids=["p0"],
                                  took_ms=1.0))
            session.add(FeedbackEvent(tenant_id=tenant_id, search_id=f"s{i}-{tenant_id}", product_id="p0",
                                      event="click", position=0))
            session.add(RuleRecord(id=f"r{i}-{tenant_id}", tenant_id=tenant_id, filters={"brand": "x"}, weight=1.0))
            session.add(UsageCounter(tenant_id=tenant_id, period=f"2024-{i + 1:02d}", endpoint="detect", count=1))
        session.add(DuplicateScan(id=f"dup-{tenant_id}", tenant_id=tenant_id, threshold=0.9))
        session.add(TenantMigration(tenant_id=tenant_id))
        session.add(MigrationFailure(tenant_id=tenant_id, product_id="p1", code="image_unreachable"))
        session.add(ColourRefresh(tenant_id=tenant_id, version=2))
        session.add(ColourRefreshFailure(tenant_id=tenant_id, product_id="p1", code="image_not_found"))
        session.add(Feed(id=f"feed-{tenant_id}", tenant_id=tenant_id, url="http://127.0.0.1:9/feed.xml",
                         format="google_xml"))
        session.flush()
        session.add(FeedSync(id=f"sync-{tenant_id}", tenant_id=tenant_id, feed_id=f"feed-{tenant_id}", number=1,
                             trigger="manual"))
        session.add(FeedProduct(feed_id=f"feed-{tenant_id}", product_id="p0", tenant_id=tenant_id, seen=1))
        session.add(AllowedOrigin(tenant_id=tenant_id, origin=f"https://{tenant_id}.example"))
        AnalyticsRepository(session, tenant_id).add(search_increments([SearchFact(utcnow(), "text", None, 0, "q")]) | (
            event_increments([EventFact(SearchFact(utcnow(), "text", None, 1, "q"), "purchase", "p0", 0, True, 1.0,
                                        "EUR")])))
    vectors = np.eye(SPACE.size, dtype=np.float32)
    index.upsert(tenant_id, [IndexPoint(f"p{i}", vectors[i], {"product_id": f"p{i}"}) for i in range(PRODUCTS)])


def rows_of(db: Database, tenant_id: str) -> dict[str, int]:
    """The tenant's rows in every table of trooply.models: by tenant_id, and the tenants row by its id."""
    counts = {}
    with db.session() as session:
        for table in Base.metadata.sorted_tables:
            column = table.c.get("tenant_id") if table.name != "tenants" else table.c.id
            if column is not None:
                counts[table.name] = session.scalar(select(func.count()).select_from(table).where(column == tenant_id))
    return counts


def new_tenant(tenants: TenantService, db: Database, index: VectorIndex) -> tuple[str, str]:
    credentials = tenants.create_tenant("shop", "free")
    seed(db, index, credentials.tenant_id)
    return credentials.tenant_id, credentials.secret_key


def test_every_table_with_a_tenant_id_is_purged():
    owned = {table.name for table in Base.metadata.sorted_tables if "tenant_id" in table.c}
    assert owned == {model.__table__.name for model in TENANT_TABLES}


def test_a_deleted_tenant_leaves_nothing_behind_and_others_keep_everything(db, index):
    tenants = TenantService(db, key_cache_seconds=60)
    victim, victim_key = new_tenant(tenants, db, index)
    bystander, bystander_key = new_tenant(tenants, db, index)
    tenants.authenticate(victim_key)  # cached now
    before = rows_of(db, bystander)
    assert all(count > 0 for count in rows_of(db, victim).values())

    assert tenants.mark_deleted(victim)
    with pytest.raises(Unauthorized):
        tenants.authenticate(victim_key)  # at once, cached or not
    TenantPurge(db, LiveSpaces.serving(index), batch_rows=3).run(victim)

    assert set(rows_of(db, victim).values()) == {0}
    assert index.count(victim) == 0
    assert rows_of(db, bystander) == before and index.count(bystander) == PRODUCTS
    assert tenants.authenticate(bystander_key).tenant_id == bystander
    TenantPurge(db, LiveSpaces.serving(index)).run(victim)  # again: nothing left to do, no error


def test_an_interrupted_purge_is_resumed_at_start(db, index):
    tenants = TenantService(db)
    victim, _ = new_tenant(tenants, db, index)
    tenants.mark_deleted(victim)
    batches = iter(range(4))
    with pytest.raises(PurgeInterrupted):  # the process stops after four batches
        TenantPurge(db, LiveSpaces.serving(index), batch_rows=2,
                    stopping=lambda: next(batches, None) is None).run(victim)
    left = rows_of(db, victim)
    assert left["tenants"] == 1
    assert left["ingest_items"] == 0 and left["products"] == PRODUCTS  # midway: the items are gone, not the rest

    queue = InProcessQueue(1)  # the next start: the service resumes the purge on the real task queue
    admin = TenantAdminService(db, tenants, Settings(), queue, LiveSpaces.serving(index))
    queue.register(PURGE_TASK, admin.run_purge)
    queue.start()
    try:
        assert admin.resume_purges() == 1
        deadline = time.monotonic() + 30
        while rows_of(db, victim)["tenants"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        queue.stop()
    assert set(rows_of(db, victim).values()) == {0}
    assert index.count(victim) == 0


def test_a_tenant_not_marked_deleted_is_never_purged(db, index):
    tenants = TenantService(db)
    tenant, key = new_tenant(tenants, db, index)
    TenantPurge(db, LiveSpaces.serving(index)).run(tenant)
    assert all(count > 0 for count in rows_of(db, tenant).values())
    assert index.count(tenant) == PRODUCTS and tenants.authenticate(key).tenant_id == tenant


def test_a_deleted_tenant_is_gone_for_every_operation(db, index):
    tenants = TenantService(db)
    admin = TenantAdminService(db, tenants, Settings(), None, LiveSpaces.serving(index))
    tenant, _ = new_tenant(tenants, db, index)
    admin.delete(tenant)
    assert admin.delete(tenant).status == "deleting"  # again while the purge is pending: the same answer
    assert tenant not in [listed.tenant_id for listed in admin.page(100).tenants]
    for operation in (admin.get, admin.rotate_keys, tenants.rotate_keys, tenants.account, tenants.get_plan):
        with pytest.raises(NotFound):
            operation(tenant)
    TenantPurge(db, LiveSpaces.serving(index)).run(tenant)
    with pytest.raises(NotFound):
        admin.delete(tenant)
    with db.session() as session:
        assert session.get(Tenant, tenant) is None


def test_with_workers_elsewhere_every_sweep_sends_the_purge_again(db, index):
    """A worker's purge that was lost (or is still running) is sent again: it is idempotent."""
    tenants = TenantService(db)
    workers = WorkerQueue()
    admin = TenantAdminService(db, tenants, Settings(), workers, LiveSpaces.serving(index))
    tenant, _ = new_tenant(tenants, db, index)
    admin.delete(tenant)
    assert admin.resume_purges() == 1
    assert workers.sent == [(PURGE_TASK, [tenant])] * 2
