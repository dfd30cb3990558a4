"""Tiered storage on both engines: isolation in the shared store, promotion (also under load), crashes."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient, models

from trooply.errors import ServiceUnavailable
from trooply.index.base import IndexPoint, TierStatus
from trooply.index.datadir_lock import DataDirLock
from trooply.index.edge import EdgeIndex, tier_on_disk
from trooply.index.filters import filterable_payload, parse_filters
from trooply.index.server import QdrantServerIndex
from trooply.index.tiers import TENANT_KEY, TieredIndex
from trooply.vectors import VectorSpace

SPACE = VectorSpace("clip-test", 8)
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


def unit(i: int) -> np.ndarray:
    vector = np.zeros(SPACE.size, dtype=np.float32)
    vector[i % SPACE.size] = 1.0
    return vector


def point(product_id: str, vector: np.ndarray, **metadata: Any) -> IndexPoint:
    return IndexPoint(product_id, vector, {"product_id": product_id, **filterable_payload(metadata)})


class SerialisedClient:
    """The real in-memory client, one call at a time: local mode is not thread-safe (a server is)."""

    def __init__(self) -> None:
        self._client = QdrantClient(":memory:")
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def serialised(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)
        return serialised


@pytest.fixture(params=["edge", "server"])
def open_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    client: Any = SerialisedClient()
    opened: list[TieredIndex] = []

    def open_(threshold: int = 20000) -> TieredIndex:
        index: TieredIndex = (EdgeIndex(tmp_path, SPACE, promotion_threshold=threshold) if request.param == "edge"
                              else QdrantServerIndex(client, SPACE, promotion_threshold=threshold, settle_seconds=0))
        opened.append(index)
        return index

    yield open_
    for index in opened:
        if isinstance(index, EdgeIndex):
            index.close()
    client.close()


def copies_left_in_shared(index: TieredIndex, tenant_id: str, data_dir: Path) -> int:
    """Points of the tenant still in the shared storage, read as any other client of it would: the server's
    shared collection, or Edge's `shared/` shard (after closing the index: a shard has one owner)."""
    if isinstance(index, QdrantServerIndex):
        tenant = models.Filter(must=[models.FieldCondition(key=TENANT_KEY, match=models.MatchValue(value=tenant_id))])
        return index.client.count(index.shared_name(), count_filter=tenant, exact=True).count
    index.close()
    shard = qe.EdgeShard.load(str(data_dir / "index" / SPACE.name / "shared"))
    try:
        tenant_only = qe.Filter(must=[qe.FieldCondition(TENANT_KEY, match=qe.MatchValue(tenant_id))])
        return shard.count(qe.CountRequest(filter=tenant_only, exact=True))
    finally:
        shard.close()


def test_every_call_for_one_shared_tenant_leaves_the_other_alone(open_index: Any) -> None:
    index = open_index()
    # The same product ids and vectors in both tenants: only the tenant condition tells them apart.
    for tenant, brand in (("a", "nike"), ("b", "puma")):
        index.upsert(tenant, [point(f"p{i}", unit(i), brand=brand, price=i) for i in range(6)])
    assert index.tier("a") == index.tier("b") == TierStatus("shared")

    assert {h.payload["brand"] for h in index.query("a", unit(0), 50)} == {"nike"}
    assert index.query("a", unit(0), 50, parse_filters({"brand": "puma"})) == []
    assert {p.payload["brand"] for p in index.retrieve("a", ["p0", "p5", "missing"])} == {"nike"}
    assert len(index.scroll("a", 50).points) == 6 and index.count("a") == 6
    (near,) = index.neighbours("a", index.retrieve("a", ["p0"]), -1.0, 50)
    assert sorted(h.product_id for h in near) == [f"p{i}" for i in range(1, 6)], "b's p0 is not a's neighbour"
    assert all(TENANT_KEY not in h.payload and "_v" not in h.payload for h in index.query("a", unit(0), 50))

    index.set_payload("a", "p1", {"brand": "changed"})
    index.set_payload("a", "p2", {"brand": "replaced"}, replace=True)
    index.delete("a", ["p3"])
    index.upsert("a", [point("p4", unit(7), brand="moved")])
    index.drop_tenant("a")

    assert index.count("a") == 0 and index.count("b") == 6
    assert {h.product_id: h.payload["brand"] for h in index.query("b", unit(0), 50)} == {
        f"p{i}": "puma" for i in range(6)}
    (p4,) = index.retrieve("b", ["p4"])
    assert p4.vector == pytest.approx(unit(4))


def test_a_tenant_past_the_threshold_is_promoted_in_the_background(open_index: Any, tmp_path: Path) -> None:
    index = open_index(threshold=10)
    index.upsert("small", [point("s1", unit(1))])
    index.upsert("big", [point(f"p{i}", unit(i), price=i) for i in range(9)])
    assert index.tier("big") == TierStatus("shared")
    index.upsert("big", [point("p9", unit(9), price=9)])  # the tenth: promotion starts
    index.promote("big").result(timeout=60)  # the one already running

    assert index.tier("big") == TierStatus("dedicated") and index.tier("small") == TierStatus("shared")
    assert index.count("big") == 10 and copies_left_in_shared(index, "big", tmp_path) == 0
    index = index if isinstance(index, QdrantServerIndex) else open_index(threshold=10)
    assert {h.product_id for h in index.query("big", unit(0), 20, parse_filters({"price": {"lte": 3}}))} == {
        "p0", "p1", "p2", "p3"}
    assert index.count("small") == 1
    index.promote("big").result(timeout=5)  # a dedicated tenant: nothing to do
    index.drop_tenant("big")
    assert index.tier("big") == TierStatus("shared") and index.count("big") == 0 and index.count("small") == 1


def test_promotion_under_concurrent_writes_and_searches_loses_nothing(open_index: Any, tmp_path: Path) -> None:
    index = open_index()
    index.upsert("t", [point(f"base{i}", unit(i), price=i) for i in range(600)])
    expected: dict[str, float] = {f"base{i}": float(i) for i in range(600)}
    errors: list[BaseException] = []
    empty_answers: list[int] = []
    stop = threading.Event()

    def write(worker: int) -> None:
        try:
            i = 0
            while not stop.is_set() or i < 20:
                index.upsert("t", [point(f"w{worker}-{i}", unit(i), price=1000 + i)])
                expected[f"w{worker}-{i}"] = 1000.0 + i
                if i % 3 == 0 and i % 5 != 1 and i < 590:  # a product still there
                    index.set_payload("t", f"base{i}", filterable_payload({"price": 5000 + i}))
                    expected[f"base{i}"] = 5000.0 + i
                if i % 5 == 0:
                    index.delete("t", [f"base{i + 1}"])
                    expected.pop(f"base{i + 1}", None)
                i += 1
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    def search() -> None:
        try:
            while not stop.is_set():
                if not index.query("t", unit(0), 5):
                    empty_answers.append(1)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(2)] + [threading.Thread(target=search)]
    for thread in threads:
        thread.start()
    try:
        index.promote("t").result(timeout=120)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert errors == [] and empty_answers == []
    assert index.tier("t") == TierStatus("dedicated") and copies_left_in_shared(index, "t", tmp_path) == 0
    index = index if isinstance(index, QdrantServerIndex) else open_index()
    stored: dict[str, float] = {}
    offset = None
    while True:
        page = index.scroll("t", 500, offset)
        found = index.retrieve("t", [p.product_id for p in page.points])
        stored.update((p.product_id, p.payload["price"]) for p in found)
        offset = page.next_offset
        if offset is None:
            break
    assert stored == expected


def test_a_search_that_chose_the_shared_store_before_the_switch_answers_from_the_new_one(
        open_index: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race CI once hit: a search picks the shared store, the promotion switches and empties it, and only
    then does the search's query run."""
    index = open_index()
    index.upsert("t", [point(f"p{i}", unit(i)) for i in range(SPACE.size)])  # one point per direction
    shared = index._shared_store()
    chosen, promoted = threading.Event(), threading.Event()
    query_shared = shared.query

    def query_after_the_promotion(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "searcher" and not promoted.is_set():
            chosen.set()
            assert promoted.wait(timeout=60)
        return query_shared(*args, **kwargs)

    monkeypatch.setattr(shared, "query", query_after_the_promotion)
    answers: list[list[str]] = []
    searcher = threading.Thread(name="searcher", target=lambda: answers.append(
        [hit.product_id for hit in index.query("t", unit(3), 3)]))
    searcher.start()
    assert chosen.wait(timeout=60)
    index.promote("t").result(timeout=60)
    assert index._shared_store().count([]) == 0  # the shared copy is gone before the search reads
    promoted.set()
    searcher.join(timeout=60)

    assert len(answers) == 1 and answers[0] and answers[0][0] == "p3"


def test_on_the_server_the_shared_copy_outlives_the_switch_by_the_settle_delay():
    """Another process's search may have chosen the shared collection just before the switch: it still finds the
    tenant's points there for the settle delay."""
    client = SerialisedClient()
    index = QdrantServerIndex(client, SPACE, settle_seconds=1.0)
    index.upsert("t", [point(f"p{i}", unit(i)) for i in range(SPACE.size)])
    promotion = index.promote("t")
    deadline = time.monotonic() + 30
    while index.tier("t") != TierStatus("dedicated"):
        assert time.monotonic() < deadline and not promotion.done()
        time.sleep(0.01)
    assert copies_left_in_shared(index, "t", Path()) == SPACE.size
    promotion.result(timeout=30)
    assert copies_left_in_shared(index, "t", Path()) == 0


def test_a_shared_collection_another_process_deleted_is_created_again_on_next_use():
    """What a model's vectors dropped by a worker leave in every other process: a handle on a deleted collection.
    A migration to that model again must not fail there."""
    client = SerialisedClient()
    index = QdrantServerIndex(client, SPACE, settle_seconds=0)
    index.upsert("t", [point("a", unit(0))])
    client.delete_collection(index.shared_name())  # as another process's `destroy()` does

    assert index.count("t") == 0
    index.upsert("t", [point("b", unit(1))])
    assert [hit.product_id for hit in index.query("t", unit(1), 3)] == ["b"]


def test_a_shared_collection_deleted_with_its_model_is_not_brought_back_by_a_late_write():
    client = SerialisedClient()
    kept = [True]
    index = QdrantServerIndex(client, SPACE, settle_seconds=0, kept=lambda: kept[0])
    index.upsert("t", [point("a", unit(0))])
    kept[0] = False  # the model was cleaned up (or its migration aborted) ...
    client.delete_collection(index.shared_name())  # ... and another process dropped its vectors

    with pytest.raises(ServiceUnavailable) as refused:
        index.upsert("t", [point("b", unit(1))])  # an ingest batch that chose its models before
    assert refused.value.code == "model_retired"
    assert not client.collection_exists(index.shared_name())


def test_a_promotion_cut_short_leaves_the_tenant_in_shared_and_a_later_one_succeeds(
        open_index: Any, tmp_path: Path) -> None:
    index = open_index()
    index.upsert("t", [point(f"p{i}", unit(i)) for i in range(5)])
    index._begin_promotion("t")  # as if the process died while copying
    index.upsert("t", [point("late", unit(6))])
    if isinstance(index, EdgeIndex):
        index.close()
        index = open_index()
        assert not (tmp_path / "index" / SPACE.name / "promoting" / "t").exists()
    assert index.tier("t").tier == "shared" and index.count("t") == 6

    index.promote("t").result(timeout=60)
    assert index.tier("t") == TierStatus("dedicated") and index.count("t") == 6


def test_a_dedicated_tenant_survives_a_reopen(open_index: Any) -> None:
    index = open_index()
    index.upsert("t", [point(f"p{i}", unit(i), brand="x") for i in range(5)])
    index.promote("t").result(timeout=60)
    if isinstance(index, EdgeIndex):
        index.close()
    reopened = open_index()
    assert reopened.tier("t") == TierStatus("dedicated") and reopened.count("t") == 5
    assert {h.product_id for h in reopened.query("t", unit(0), 10, parse_filters({"brand": "x"}))} == {
        f"p{i}" for i in range(5)}


def test_two_spaces_open_side_by_side_under_one_data_directory_lock(tmp_path: Path) -> None:
    lock = DataDirLock(tmp_path)
    active, next_model = EdgeIndex(tmp_path, SPACE, lock=lock), EdgeIndex(tmp_path, VectorSpace("next", 4), lock=lock)
    try:
        active.upsert("t", [point("p1", unit(1))])
        next_model.upsert("t", [IndexPoint("p1", np.ones(4, np.float32), {"product_id": "p1"})])
        assert active.count("t") == next_model.count("t") == 1
        with pytest.raises(ServiceUnavailable):
            EdgeIndex(tmp_path, SPACE)  # another owner is still refused
    finally:
        active.close()
        next_model.close()
    with pytest.raises(ServiceUnavailable):
        DataDirLock(tmp_path)  # the indexes did not release what they did not take
    lock.release()
    EdgeIndex(tmp_path, SPACE).close()


def test_the_data_directory_tells_the_tier_without_the_index(tmp_path: Path) -> None:
    index = EdgeIndex(tmp_path, SPACE, promotion_threshold=3)
    try:
        index.upsert("small", [point("s1", unit(1))])
        index.upsert("big", [point(f"p{i}", unit(i)) for i in range(3)])
        index.promote("big").result(timeout=60)
        # Read while the index holds the data directory, as the CLI does beside a running server.
        assert tier_on_disk(tmp_path, SPACE.name, "big") == index.tier("big") == TierStatus("dedicated")
        assert tier_on_disk(tmp_path, SPACE.name, "small") == index.tier("small") == TierStatus("shared")
        assert tier_on_disk(tmp_path, SPACE.name, "nobody") == TierStatus("shared")
    finally:
        index.close()
