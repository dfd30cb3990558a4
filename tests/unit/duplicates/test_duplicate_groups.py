"""Near-duplicate groups through both index engines, and the grouping of pairs on its own."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from trooply.duplicates.finder import DuplicatePair, find_duplicates, group_pairs
from trooply.duplicates.schemas import page_of
from trooply.errors import InvalidRequest, NotFound
from trooply.index.base import IndexPoint, VectorIndex
from trooply.index.edge import EdgeIndex
from trooply.index.server import QdrantServerIndex
from trooply.spaces.live import LiveSpaces
from trooply.vectors import VectorSpace

SPACE = VectorSpace("clip-test", 16)
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


@pytest.fixture(params=["edge", "server"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorIndex]:
    if request.param == "edge":
        opened = EdgeIndex(tmp_path, SPACE)
        yield opened
        opened.close()
    else:
        client = QdrantClient(":memory:")
        yield QdrantServerIndex(client, SPACE)
        client.close()


def catalogue(index: VectorIndex) -> None:
    rng = np.random.default_rng(7)
    base = rng.standard_normal((40, SPACE.size)).astype(np.float32)  # 40 unrelated products
    points = [IndexPoint(f"p{i:02d}", base[i], {}) for i in range(40)]
    # Three copies of p00 (one slightly edited), a pair of p01, and a chain p02 ~ x ~ y.
    jitter = 0.05 * rng.standard_normal(SPACE.size).astype(np.float32)
    points += [IndexPoint("p00-copy", base[0], {}), IndexPoint("p00-copy2", base[0], {}),
               IndexPoint("p00-edit", base[0] + jitter, {}), IndexPoint("p01-copy", base[1], {})]
    # On a circle through p02: 11.5 degrees apart (cosine 0.98) per step, so p02 and chain-y are at 0.92.
    start = base[2] / np.linalg.norm(base[2])
    turn = base[3] - (base[3] @ start) * start
    turn /= np.linalg.norm(turn)
    angle = np.arccos(0.98)
    points += [IndexPoint(f"chain-{name}", np.cos(k * angle) * start + np.sin(k * angle) * turn, {})
               for k, name in ((1, "x"), (2, "y"))]
    index.upsert("t1", points)
    index.upsert("t2", [IndexPoint("other", base[0], {})])


def test_groups_largest_first_with_their_pairs_and_only_inside_the_tenant(index: VectorIndex) -> None:
    catalogue(index)
    report = find_duplicates(index, "t1", 0.97, max_neighbours=10, batch_size=7)
    assert report.products_scanned == 46
    groups = [g.products for g in report.groups]
    assert groups[0] == ["p00", "p00-copy", "p00-copy2", "p00-edit"]
    assert ["p01", "p01-copy"] in groups and "other" not in str(groups)
    first = report.groups[0]
    assert first.max_similarity == 1.0 and len(first.pairs) == 6
    assert [p.similarity for p in first.pairs] == sorted((p.similarity for p in first.pairs), reverse=True)
    assert all(p.a < p.b and p.similarity >= 0.97 for g in report.groups for p in g.pairs)
    chain = next(g for g in report.groups if "chain-x" in g.products)
    assert chain.products == ["chain-x", "chain-y", "p02"], "A~B and B~C are one group"
    assert len(chain.pairs) == 2, "p02 and chain-y are below the threshold: no pair, same group"


def test_a_higher_threshold_splits_off_the_edited_copy(index: VectorIndex) -> None:
    catalogue(index)
    strict = find_duplicates(index, "t1", 0.9999, max_neighbours=10, batch_size=64)
    assert strict.groups[0].products == ["p00", "p00-copy", "p00-copy2"]
    assert find_duplicates(index, "nobody", 0.97, 10, 64).groups == []


def test_group_pairs_orders_by_size_then_similarity_then_id() -> None:
    similarities = {("a", "b"): 0.98, ("c", "d"): 0.99, ("e", "f"): 0.97, ("f", "g"): 0.975}
    groups = group_pairs({pair: DuplicatePair(*pair, similarity) for pair, similarity in similarities.items()})
    assert [g.products for g in groups] == [["e", "f", "g"], ["c", "d"], ["a", "b"]]
    assert groups[0].pairs == [DuplicatePair("f", "g", 0.975), DuplicatePair("e", "f", 0.97)]
    assert groups[0].max_similarity == 0.975


def test_pages_of_groups_follow_their_cursor() -> None:
    groups = [{"products": [str(i)], "max_similarity": 1.0, "pairs": []} for i in range(5)]
    first = page_of(groups, 2, None)
    second = page_of(groups, 2, first.next_cursor)
    last = page_of(groups, 2, second.next_cursor)
    assert [g.products for g in first.groups + second.groups + last.groups] == [[str(i)] for i in range(5)]
    assert last.next_cursor is None and first.groups_total == 5
    for bad in ("nope", "Z3JvdXBzOi0x", "%%%"):
        with pytest.raises(InvalidRequest) as error:
            page_of(groups, 2, bad)
        assert error.value.code == "invalid_cursor"


def test_a_scan_is_sent_once_resumed_while_unfinished_and_idempotent(tmp_path: Path) -> None:
    from trooply.config import Settings
    from trooply.db import Database
    from trooply.duplicates.service import DuplicateService
    from trooply.tenancy.service import TenantService

    db = Database(f"sqlite:///{tmp_path / 'scans.db'}")
    db.migrate()
    tenant = TenantService(db).create_tenant("shop", "free").tenant_id
    index = EdgeIndex(tmp_path / "data", SPACE)
    try:
        twin = np.arange(1, SPACE.size + 1, dtype=np.float32)
        index.upsert(tenant, [IndexPoint("a", twin, {}), IndexPoint("b", twin, {}), IndexPoint("c", -twin, {})])
        sent: list[tuple[str, str]] = []
        service = DuplicateService(db, LiveSpaces.serving(index), Settings(data_dir=tmp_path),
                                   lambda *scan: sent.append(scan))
        scan = service.start_scan(tenant, 0.97)
        assert scan.status == "pending" and sent == [(tenant, scan.scan_id)]
        assert service.start_scan(tenant, 0.97).scan_id == scan.scan_id, "asked twice: one scan answers both"
        assert service.resume_unfinished() == 1 and sent[-1] == (tenant, scan.scan_id)
        service.run_scan(tenant, scan.scan_id)
        done = service.scan(tenant, scan.scan_id, 10, None)
        assert done.status == "completed" and done.products_scanned == 3
        assert [g.products for g in done.groups] == [["a", "b"]] and done.finished_at is not None
        service.run_scan(tenant, scan.scan_id)  # a redelivered task finds it finished
        assert service.resume_unfinished() == 0
        with pytest.raises(NotFound) as missing:
            service.scan("another-tenant", scan.scan_id, 10, None)
        assert missing.value.code == "scan_not_found"
    finally:
        index.close()
        db.close()


def product_of_images(product_id: str, *vectors: np.ndarray) -> IndexPoint:
    """As ingest stores a product of several images: every image's vector, and the gallery naming them."""
    gallery = [{"url": f"https://cdn.example.com/{product_id}-{row}.jpg", "position": row}
               for row in range(len(vectors))]
    return IndexPoint(product_id, vectors[0], {"metadata": {"image_url": gallery[0]["url"]}, "gallery": gallery},
                      np.stack(vectors) if len(vectors) > 1 else None)


def test_two_products_sharing_one_near_identical_image_are_a_pair_naming_those_images(index: VectorIndex) -> None:
    rng = np.random.default_rng(3)
    views = rng.standard_normal((6, SPACE.size)).astype(np.float32)
    views /= np.linalg.norm(views, axis=1, keepdims=True)
    index.upsert("t1", [product_of_images("shoe", views[0], views[1], views[2]),
                        product_of_images("boot", views[3], views[1]),  # boot's side view is the shoe's
                        product_of_images("lamp", views[4]), product_of_images("vase", views[5], views[4])])
    report = find_duplicates(index, "t1", 0.97, max_neighbours=10, batch_size=8)
    assert sorted(g.products for g in report.groups) == [["boot", "shoe"], ["lamp", "vase"]]
    pairs = {(p.a, p.b): p for g in report.groups for p in g.pairs}
    boot_shoe = pairs["boot", "shoe"]
    assert boot_shoe.similarity == pytest.approx(1.0, abs=1e-4)
    assert boot_shoe.a_image == {"url": "https://cdn.example.com/boot-1.jpg", "position": 1}
    assert boot_shoe.b_image == {"url": "https://cdn.example.com/shoe-1.jpg", "position": 1}
    lamp_vase = pairs["lamp", "vase"]  # the lamp's only image is the vase's second
    assert (lamp_vase.a_image, lamp_vase.b_image) == ({"url": "https://cdn.example.com/lamp-0.jpg", "position": 0},
                                                      {"url": "https://cdn.example.com/vase-1.jpg", "position": 1})
