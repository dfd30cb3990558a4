"""One contract, two engines: Qdrant Edge on a temporary directory and qdrant-client in memory."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from trooply.errors import IndexModelMismatch, ServiceUnavailable
from trooply.index.base import IndexPoint, TierStatus, VectorIndex
from trooply.index.edge import EdgeIndex
from trooply.index.filters import filterable_payload, parse_filters
from trooply.index.server import QdrantServerIndex
from trooply.vectors import VectorSpace

SPACE = VectorSpace("clip-test", 8)
# Local-mode qdrant-client ignores payload indexes and says so; the server adapter still creates them.
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


def unit(i: int) -> np.ndarray:
    vector = np.zeros(SPACE.size, dtype=np.float32)
    vector[i] = 1.0
    return vector


def point(product_id: str, vector: np.ndarray, **metadata: Any) -> IndexPoint:
    return IndexPoint(product_id, vector, {"product_id": product_id, **filterable_payload(metadata)})


class Backend:
    """Opens indexes of one kind, and reopens them on the same storage."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.client = QdrantClient(":memory:")
        self.opened: list[VectorIndex] = []

    def open(self, space: VectorSpace = SPACE, **options: Any) -> VectorIndex:
        index: VectorIndex = (EdgeIndex(self.tmp_path, space, **options) if self.kind == "edge"
                              else QdrantServerIndex(self.client, space))
        self.opened.append(index)
        return index

    def reopen(self, index: VectorIndex, space: VectorSpace = SPACE) -> VectorIndex:
        if self.kind == "edge":
            index.close()  # the data directory has one owner at a time
        return self.open(space)

    def close_all(self) -> None:
        for index in self.opened:
            if self.kind == "edge":
                index.close()
        self.client.close()


@pytest.fixture(params=["edge", "server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened = Backend(request.param, tmp_path)
    yield opened
    opened.close_all()


@pytest.fixture
def index(backend: Backend) -> VectorIndex:
    return backend.open()


@pytest.fixture
def catalogue(index: VectorIndex) -> VectorIndex:
    index.upsert("t1", [
        point("p1", unit(0), category="Shoes", brand="Nike", price=50, in_stock=True, attributes={"colour": "Red"}),
        point("p2", unit(1), category="shoes", brand="Adidas", price=120, in_stock=False,
              attributes={"colour": "blue"}),
        point("p3", unit(2), category="bags", brand="Gucci", price=900, in_stock=True, attributes={"colour": "red"}),
        point("p4", unit(3), category="bags", price=30, in_stock=False),
    ])
    return index


def ids(index: VectorIndex, tenant_id: str = "t1", filters: dict[str, Any] | None = None) -> set[str]:
    return {hit.product_id for hit in index.query(tenant_id, unit(0), 10, parse_filters(filters))}


def test_nearest_first_with_cosine_scores(index: VectorIndex) -> None:
    a, b = np.array([1, 2, 0, 0, 0, 0, 0, 0], np.float32), np.array([0, 0, 3, 1, 0, 0, 0, 0], np.float32)
    index.upsert("t1", [point("a", a), point("b", b), point("c", -unit(0))])
    query = np.array([1, 1, 0, 0, 0, 0, 0, 0], np.float32)
    hits = index.query("t1", query, 10)
    assert [hit.product_id for hit in hits] == ["a", "b", "c"]
    expected = [float(v @ query / np.linalg.norm(v) / np.linalg.norm(query)) for v in (a, b, -unit(0))]
    assert [hit.score for hit in hits] == pytest.approx(expected, abs=1e-5)
    assert hits[0].payload["product_id"] == "a" and hits[0].vector is None
    assert len(index.query("t1", query, 2)) == 2


def test_query_with_vectors_returns_normalised_arrays(index: VectorIndex) -> None:
    index.upsert("t1", [point("a", np.arange(1, 9, dtype=np.float32))])
    (hit,) = index.query("t1", unit(0), 1, with_vectors=True)
    assert isinstance(hit.vector, np.ndarray) and hit.vector.shape == (SPACE.size,)
    expected = np.arange(1, 9) / np.linalg.norm(np.arange(1, 9))  # cosine stores unit vectors
    assert hit.vector == pytest.approx(expected, abs=1e-5)


def test_reupsert_replaces_the_product(catalogue: VectorIndex) -> None:
    catalogue.upsert("t1", [point("p1", unit(5), category="hats")])
    assert catalogue.count("t1") == 4
    (hit,) = catalogue.query("t1", unit(5), 1)
    assert hit.product_id == "p1" and hit.payload["category"] == "hats" and "brand" not in hit.payload


def test_set_payload_changes_metadata_and_keeps_other_keys(catalogue: VectorIndex) -> None:
    catalogue.set_payload("t1", "p2", {"image": {"width": 10}})
    catalogue.set_payload("t1", "p2", filterable_payload({"category": "shoes", "brand": "Puma", "price": 99}))
    assert ids(catalogue, filters={"brand": "puma"}) == {"p2"}
    assert ids(catalogue, filters={"brand": "adidas"}) == set()
    (hit,) = catalogue.query("t1", unit(1), 1)
    assert hit.payload["image"] == {"width": 10} and hit.payload["price"] == 99.0
    assert catalogue.count("t1") == 4


def test_set_payload_with_replace_drops_keys_not_given(catalogue: VectorIndex) -> None:
    catalogue.set_payload("t1", "p2", {"brand": "puma", "metadata": {"title": "new"}}, replace=True)
    hits = {h.product_id: h for h in catalogue.query("t1", np.ones(8, np.float32), 10)}
    assert hits["p2"].payload == {"brand": "puma", "metadata": {"title": "new"}, "product_id": "p2"}
    puma = catalogue.query("t1", np.ones(8, np.float32), 10, parse_filters({"brand": "puma"}))
    assert [h.product_id for h in puma] == ["p2"]


def test_set_payload_of_an_unknown_product_or_tenant_is_a_no_op(catalogue: VectorIndex) -> None:
    catalogue.set_payload("t1", "missing", {"brand": "x"})
    catalogue.set_payload("nobody", "p1", {"brand": "x"})
    catalogue.delete("nobody", ["p1"])
    assert catalogue.count("t1") == 4 and catalogue.count("nobody") == 0


def test_delete_removes(catalogue: VectorIndex) -> None:
    catalogue.delete("t1", ["p1", "p3", "missing"])
    assert catalogue.count("t1") == 2
    assert ids(catalogue) == {"p2", "p4"}


@pytest.mark.parametrize("filters, expected", [
    ({"brand": "NIKE"}, {"p1"}),                                  # eq on a keyword, case-insensitive
    ({"in_stock": True}, {"p1", "p3"}),                           # eq 1
    ({"in_stock": False}, {"p2", "p4"}),                          # eq 0
    ({"category": ["Bags", "hats"]}, {"p3", "p4"}),               # any
    ({"brand": {"nin": ["nike", "gucci"]}}, {"p2", "p4"}),        # except keeps p4, which has no brand
    ({"price": {"gte": 40, "lt": 900}}, {"p1", "p2"}),            # range
    ({"price": 30}, {"p4"}),                                      # a number is a one-point range
    ({"attributes.colour": "RED"}, {"p1", "p3"}),                 # nested attribute
    ({"category": "shoes", "in_stock": True}, {"p1"}),            # conditions combine with AND
    ({"category": "shoes", "brand": {"nin": ["nike"]}, "price": {"lte": 500}}, {"p2"}),
])
def test_conditions(catalogue: VectorIndex, filters: dict[str, Any], expected: set[str]) -> None:
    assert ids(catalogue, filters=filters) == expected


def test_every_condition_kind_is_covered() -> None:
    filters = {"brand": "x", "category": ["x"], "currency": {"nin": ["x"]}, "price": {"gte": 1}}
    assert {c.kind for c in parse_filters(filters)} == {"eq", "any", "except", "range"}


def test_tenants_are_isolated(catalogue: VectorIndex) -> None:
    catalogue.upsert("t2", [point("p1", unit(0), category="hats"), point("q9", unit(7))])
    assert ids(catalogue, "t2") == {"p1", "q9"}
    assert {hit.payload.get("category") for hit in catalogue.query("t2", unit(0), 10)} == {"hats", None}
    assert ids(catalogue, "t2", {"category": "shoes"}) == set()
    assert catalogue.count("t1") == 4 and catalogue.count("t2") == 2
    catalogue.delete("t2", ["p1"])
    assert catalogue.count("t1") == 4 and "p1" in ids(catalogue, "t1")


def test_unknown_tenant_is_empty_and_not_created(backend: Backend, index: VectorIndex) -> None:
    assert index.query("nobody", unit(0), 10) == [] and index.count("nobody") == 0
    assert index.tier("nobody") == TierStatus("shared")
    if backend.kind == "edge":
        assert not (backend.tmp_path / "index" / SPACE.name / "tenants" / "nobody").exists()
    else:
        assert not backend.client.collection_exists(f"trooply_{SPACE.name}.tenant.nobody")


def test_a_model_of_the_same_name_and_another_size_is_refused(backend: Backend, catalogue: VectorIndex) -> None:
    other = VectorSpace(SPACE.name, 16)
    reopened = backend.reopen(catalogue, other)
    with pytest.raises(IndexModelMismatch, match="8-d"):
        reopened.query("t1", np.ones(other.size, np.float32), 5)
    with pytest.raises(IndexModelMismatch):
        reopened.upsert("t2", [IndexPoint("p9", np.ones(other.size, np.float32), {})])


def test_another_model_has_its_own_storage_beside(backend: Backend, catalogue: VectorIndex) -> None:
    other = VectorSpace("another-model", SPACE.size)
    beside = backend.reopen(catalogue, other)
    assert beside.count("t1") == 0, "never a silent mix of two models' vectors"
    beside.upsert("t1", [point("z", unit(4))])
    assert ids(beside) == {"z"}
    again = backend.reopen(beside)
    assert again.count("t1") == 4 and "z" not in ids(again)


def test_drop_tenant(catalogue: VectorIndex) -> None:
    catalogue.upsert("t2", [point("q1", unit(0))])
    catalogue.drop_tenant("t1")
    catalogue.drop_tenant("never-seen")
    assert catalogue.count("t1") == 0 and catalogue.query("t1", unit(0), 10) == []
    assert catalogue.count("t2") == 1
    catalogue.upsert("t1", [point("p1", unit(0))])
    assert ids(catalogue) == {"p1"}


def test_retrieve_returns_the_stored_vector_and_payload_by_product_id(catalogue: VectorIndex) -> None:
    found = {p.product_id: p for p in catalogue.retrieve("t1", ["p3", "p1", "missing"])}
    assert set(found) == {"p1", "p3"}
    assert found["p3"].vector == pytest.approx(unit(2)) and found["p3"].payload["brand"] == "gucci"
    assert catalogue.retrieve("t1", []) == [] and catalogue.retrieve("nobody", ["p1"]) == []
    assert catalogue.retrieve("t2", ["p1"]) == [], "another tenant's product is not there"


def test_scroll_pages_through_every_vector_once(index: VectorIndex) -> None:
    index.upsert("t1", [point(f"p{i}", unit(i % 8) + 0.1 * unit((i + 1) % 8)) for i in range(23)])
    seen, offset, pages = [], None, 0
    while True:
        page = index.scroll("t1", 10, offset)
        seen += page.points
        pages += 1
        offset = page.next_offset
        if offset is None:
            break
    assert pages == 3 and sorted(p.product_id for p in seen) == sorted(f"p{i}" for i in range(23))
    assert all(p.vector.shape == (SPACE.size,) and set(p.payload) == {"product_id"} for p in seen)
    assert index.scroll("nobody", 10).points == []


def test_neighbours_above_a_score_for_many_products_in_one_call(index: VectorIndex) -> None:
    near = unit(0) + 0.2 * unit(1)  # cosine 0.98 with unit(0)
    index.upsert("t1", [point("a", unit(0)), point("a-copy", unit(0)), point("a-near", near),
                        point("b", unit(3)), point("c", unit(5))])
    points = {p.product_id: p for p in index.retrieve("t1", ["a", "b", "a-near"])}
    found = index.neighbours("t1", [points["a"], points["b"], points["a-near"]], 0.97, 10)
    scores = [{hit.product_id: round(hit.score, 3) for hit in hits} for hits in found]
    assert scores == [{"a-copy": 1.0, "a-near": 0.981}, {}, {"a": 0.981, "a-copy": 0.981}]
    assert [hit.product_id for hit in found[0]] == ["a-copy", "a-near"], "closest first, itself left out"
    assert len(index.neighbours("t1", [points["a"]], 0.5, 1)[0]) == 1
    assert index.neighbours("nobody", [points["a"]], 0.5, 5) == [[]] and index.neighbours("t1", [], 0.5, 5) == []


# Qdrant Edge only


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[EdgeIndex]:
    index = EdgeIndex(tmp_path, SPACE)
    yield index
    index.close()


def test_edge_ping_answers_while_open_and_refuses_once_closed(edge: EdgeIndex) -> None:
    edge.ping()
    edge.close()
    with pytest.raises(ServiceUnavailable) as closed:
        edge.ping()
    assert closed.value.code == "index_closed"


def test_edge_second_owner_of_the_data_dir_is_refused(tmp_path: Path, edge: EdgeIndex) -> None:
    with pytest.raises(ServiceUnavailable) as refused:
        EdgeIndex(tmp_path, SPACE)
    assert refused.value.code == "data_dir_locked" and "another Trooply process" in refused.value.message


def test_edge_reopen_after_close_keeps_the_data(tmp_path: Path) -> None:
    first = EdgeIndex(tmp_path, SPACE)
    first.upsert("t1", [point("p1", unit(0), brand="Nike"), point("p2", unit(1))])
    first.set_payload("t1", "p2", {"brand": "puma"})
    first.close()
    with pytest.raises(ServiceUnavailable):
        first.count("t1")
    second = EdgeIndex(tmp_path, SPACE)
    try:
        assert second.count("t1") == 2
        assert ids(second, filters={"brand": "puma"}) == {"p2"}
    finally:
        second.close()


def test_edge_builds_in_the_background_and_keeps_writes_made_meanwhile(tmp_path: Path) -> None:
    index = EdgeIndex(tmp_path, SPACE, optimize_threshold=20)
    try:
        index.upsert("t1", [point(f"p{i}", unit(i % 8), price=i) for i in range(20)])
        deadline = time.monotonic() + 30
        while (build := index.graph_build("t1")).building and not build.recording and time.monotonic() < deadline:
            time.sleep(0.01)  # until the copy is taken: what follows is replayed on it
        index.upsert("t1", [point("late", unit(0), brand="new")])
        index.delete("t1", ["p1"])
        index.set_payload("t1", "p2", {"brand": "patched"})
        assert index.count("t1") == 20  # served while the build runs
        while index.graph_build("t1").building and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not index.graph_build("t1").building
        assert index.count("t1") == 20
        assert ids(index, filters={"brand": "new"}) == {"late"}
        assert ids(index, filters={"brand": "patched"}) == {"p2"}
        assert "p1" not in {hit.product_id for hit in index.query("t1", unit(1), 30)}
        assert not (tmp_path / "index-work" / "new" / "index" / SPACE.name / "shared").exists()
        assert not (tmp_path / "index-work" / "old" / "index" / SPACE.name / "shared").exists()
    finally:
        index.close()
    reopened = EdgeIndex(tmp_path, SPACE)
    try:
        assert reopened.count("t1") == 20 and ids(reopened, filters={"brand": "patched"}) == {"p2"}
    finally:
        reopened.close()


def test_edge_serves_threads_concurrently(edge: EdgeIndex) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(50):
                edge.upsert("t1", [point(f"w{worker}-{i}", unit(i % 8))])
                edge.query("t1", unit(worker % 8), 5, parse_filters({"in_stock": False}))
                edge.count("t2")
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and edge.count("t1") == 200
