"""One tenant's duplicate work cannot crowd out another's: scans are capped per tenant (429, whatever the
thresholds), and the synchronous search runs on a small pool where each tenant holds at most its share."""

import threading
from pathlib import Path

import numpy as np
import pytest

from trooply.config import Settings
from trooply.db import Database
from trooply.duplicates.service import DuplicateService
from trooply.errors import TrooplyError
from trooply.index.base import IndexPoint
from trooply.index.edge import EdgeIndex
from trooply.scheduling import TenantBoundedPool
from trooply.spaces.live import LiveSpaces
from trooply.tenancy.service import TenantService
from trooply.vectors import VectorSpace

SPACE = VectorSpace("clip-test", 8)


@pytest.fixture
def service(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'scans.db'}")
    db.migrate()
    index = EdgeIndex(tmp_path / "data", SPACE)
    settings = Settings(data_dir=tmp_path, duplicates_scans_per_tenant=2)
    yield DuplicateService(db, LiveSpaces.serving(index), settings, lambda *scan: None), TenantService(db), index
    index.close()
    db.close()


def test_a_tenant_may_have_a_few_scans_queued_whatever_their_thresholds(service) -> None:
    duplicates, tenants, _ = service
    flood, other = (tenants.create_tenant(name, "free").tenant_id for name in ("flood", "other"))
    first = duplicates.start_scan(flood, 0.5)
    duplicates.start_scan(flood, 0.5001)
    with pytest.raises(TrooplyError) as refused:
        duplicates.start_scan(flood, 0.5002)
    assert (refused.value.status, refused.value.code) == (429, "too_many_scans")
    assert refused.value.details["retry_after"] > 0
    assert duplicates.start_scan(flood, 0.5).scan_id == first.scan_id, "the same scan asked again is no new one"
    assert duplicates.start_scan(other, 0.9).status == "pending", "another tenant's scan is never refused for it"
    duplicates.run_scan(flood, first.scan_id)
    assert duplicates.start_scan(flood, 0.6).status == "pending", "a finished scan frees its place"


def test_a_tenant_beyond_its_share_of_the_pool_is_refused_at_once_and_others_still_run() -> None:
    pool = TenantBoundedPool(workers=2, per_tenant=1, name="test-pool", what="duplicate searches")
    release = threading.Event()
    try:
        held = pool.submit("flood", lambda: release.wait(5))
        with pytest.raises(TrooplyError) as refused:
            pool.submit("flood", lambda: True)
        assert (refused.value.status, refused.value.code) == (429, "too_many_requests")
        assert pool.submit("other", lambda: "answered").result(timeout=5) == "answered", "the other tenant's runs"
        release.set()
        assert held.result(timeout=5) is True
        assert pool.submit("flood", lambda: "again").result(timeout=5) == "again", "its slot is free once answered"
    finally:
        release.set()
        pool.close()


def test_the_synchronous_search_goes_through_the_pool(service) -> None:
    duplicates, tenants, index = service
    tenant = tenants.create_tenant("shop", "free").tenant_id
    twin = np.arange(1, SPACE.size + 1, dtype=np.float32)
    index.upsert(tenant, [IndexPoint("a", twin, {}), IndexPoint("b", twin, {})])
    found = duplicates.submit_find(tenant, 0.97, 10, None).result(timeout=10)
    assert [group.products for group in found.groups] == [["a", "b"]]
