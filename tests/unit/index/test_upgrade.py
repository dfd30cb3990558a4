"""The layout before tiers (one shard or collection per tenant) moves into the tiered one: index/legacy_layout.py,
which the container runs on every index it opens (`opened` here)."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient, models

from trooply.errors import ServiceUnavailable
from trooply.index.base import IndexPoint, TierStatus, point_id
from trooply.index.edge import EdgeIndex
from trooply.index.filters import parse_filters
from trooply.index.legacy_layout import move_legacy_layout
from trooply.index.server import QdrantServerIndex
from trooply.vectors import VectorSpace

SPACE = VectorSpace("clip-test", 8)
OTHER = VectorSpace("older-model", 8)
THRESHOLD = 5
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


def unit(i: int) -> np.ndarray:
    vector = np.zeros(SPACE.size, dtype=np.float32)
    vector[i % SPACE.size] = 1.0
    return vector


def legacy_payload(product_id: str, i: int) -> dict[str, object]:
    return {"product_id": product_id, "brand": "nike" if i % 2 else "puma", "attributes": {}}


def write_legacy_shard(data_dir: Path, tenant_id: str, products: int, space: VectorSpace = SPACE) -> None:
    """What the index wrote before tiers: `index/<tenant>/`, ids from the product id alone, no tenant key."""
    vectors = {space.name: qe.EdgeVectorParams(size=space.size, distance=qe.Distance.Cosine)}
    shard = qe.EdgeShard.create(str(data_dir / "index" / tenant_id), qe.EdgeConfig(vectors=vectors))
    shard.update(qe.UpdateOperation.create_field_index("brand", qe.PayloadSchemaType.Keyword))
    shard.update(qe.UpdateOperation.upsert_points([
        qe.Point(point_id(f"p{i}"), {space.name: unit(i).tolist()}, legacy_payload(f"p{i}", i))
        for i in range(products)]))
    shard.flush()
    shard.close()


def opened(index):
    move_legacy_layout(index)  # as `Container._open_index` does
    return index


def assert_served(index: EdgeIndex | QdrantServerIndex, tenant_id: str, products: int) -> None:
    assert index.count(tenant_id) == products
    assert {h.product_id for h in index.query(tenant_id, unit(0), 50, parse_filters({"brand": "nike"}))} == {
        f"p{i}" for i in range(products) if i % 2}
    (stored,) = index.retrieve(tenant_id, ["p1"])
    assert stored.vector == pytest.approx(unit(1)) and stored.payload == legacy_payload("p1", 1)


def test_edge_legacy_shards_move_into_the_tiers(tmp_path: Path) -> None:
    write_legacy_shard(tmp_path, "small", 3)
    write_legacy_shard(tmp_path, "big", THRESHOLD + 1)
    write_legacy_shard(tmp_path, "another", 2, OTHER)
    index = opened(EdgeIndex(tmp_path, SPACE, promotion_threshold=THRESHOLD))
    try:
        assert index.tier("small") == TierStatus("shared") and index.tier("big") == TierStatus("dedicated")
        assert_served(index, "small", 3)
        assert_served(index, "big", THRESHOLD + 1)
        assert index.count("another") == 0, "another model's vectors are never mixed in"
    finally:
        index.close()
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == [SPACE.name, OTHER.name]
    assert (tmp_path / "index" / OTHER.name / "tenants" / "another" / "edge_config.json").exists()
    older = opened(EdgeIndex(tmp_path, OTHER))
    try:
        assert older.tier("another") == TierStatus("dedicated") and older.count("another") == 2
    finally:
        older.close()

    again = opened(EdgeIndex(tmp_path, SPACE, promotion_threshold=THRESHOLD))  # a second open changes nothing
    try:
        assert_served(again, "small", 3)
        assert_served(again, "big", THRESHOLD + 1)
    finally:
        again.close()


def test_edge_move_resumes_after_a_kill_midway(tmp_path: Path) -> None:
    write_legacy_shard(tmp_path, "small", 4)
    write_legacy_shard(tmp_path, "half-copied", 3)
    first = opened(EdgeIndex(tmp_path, SPACE, promotion_threshold=THRESHOLD))
    first.close()
    # Killed after moving a shard aside and copying part of it: the shard is still aside, its points
    # partly in shared already.
    write_legacy_shard(tmp_path, "half-copied", 3)
    (tmp_path / "index-legacy").mkdir()
    (tmp_path / "index" / "half-copied").rename(tmp_path / "index-legacy" / "half-copied")
    resumed = opened(EdgeIndex(tmp_path, SPACE, promotion_threshold=THRESHOLD))
    try:
        assert_served(resumed, "small", 4)
        assert_served(resumed, "half-copied", 3)
        assert not (tmp_path / "index-legacy").exists()
    finally:
        resumed.close()


def test_edge_legacy_swap_cut_between_its_renames_is_recovered(tmp_path: Path) -> None:
    write_legacy_shard(tmp_path, "t", 3)
    (tmp_path / "index-build" / "old").mkdir(parents=True)
    shutil.move(tmp_path / "index" / "t", tmp_path / "index-build" / "old" / "t")
    index = opened(EdgeIndex(tmp_path, SPACE, promotion_threshold=THRESHOLD))
    try:
        assert_served(index, "t", 3)
        assert not (tmp_path / "index-build").exists()
    finally:
        index.close()


def write_legacy_collection(client: QdrantClient, tenant_id: str, products: int,
                            space: VectorSpace = SPACE) -> None:
    client.create_collection(f"trooply_{tenant_id}", vectors_config={
        space.name: models.VectorParams(size=space.size, distance=models.Distance.COSINE)})
    client.upsert(f"trooply_{tenant_id}", points=[
        models.PointStruct(id=point_id(f"p{i}"), vector={space.name: unit(i).tolist()},
                           payload=legacy_payload(f"p{i}", i)) for i in range(products)])


def test_server_legacy_collections_move_into_the_tiers() -> None:
    client = QdrantClient(":memory:")
    write_legacy_collection(client, "small", 3)
    write_legacy_collection(client, "big", THRESHOLD + 1)
    write_legacy_collection(client, "another", 2, OTHER)
    index = opened(QdrantServerIndex(client, SPACE, promotion_threshold=THRESHOLD, settle_seconds=0))
    assert index.tier("small") == TierStatus("shared") and index.tier("big") == TierStatus("dedicated")
    assert_served(index, "small", 3)
    assert_served(index, "big", THRESHOLD + 1)
    assert index.count("another") == 0
    names = {c.name for c in client.get_collections().collections}
    assert "trooply_small" not in names and "trooply_big" in names, "a big tenant keeps its collection, aliased"
    assert {(a.alias_name, a.collection_name) for a in client.get_aliases().aliases} == {
        (f"trooply_{SPACE.name}.tenant.big", "trooply_big"),
        (f"trooply_{OTHER.name}.tenant.another", "trooply_another")}
    assert opened(QdrantServerIndex(client, OTHER)).count("another") == 2

    again = opened(QdrantServerIndex(client, SPACE, promotion_threshold=THRESHOLD))
    assert_served(again, "small", 3)
    again.drop_tenant("big")
    assert "trooply_big" not in {c.name for c in client.get_collections().collections}
    assert again.count("big") == 0 and again.tier("big") == TierStatus("shared")


def test_edge_legacy_shard_whose_place_is_taken_is_set_aside_once(tmp_path: Path) -> None:
    index = opened(EdgeIndex(tmp_path, SPACE, promotion_threshold=THRESHOLD))
    index.upsert("big", [IndexPoint(f"q{i}", unit(i), {"product_id": f"q{i}"}) for i in range(THRESHOLD)])
    index.promote("big").result()
    index.close()
    write_legacy_shard(tmp_path, "big", THRESHOLD + 1)  # an older copy, left by a run of the version before tiers
    for _ in range(2):  # the second start finds nothing left to move
        reopened = opened(EdgeIndex(tmp_path, SPACE, promotion_threshold=THRESHOLD))
        try:
            assert reopened.count("big") == THRESHOLD, "the tenant keeps its own store"
        finally:
            reopened.close()
        assert sorted(p.name for p in (tmp_path / "index-legacy").iterdir()) == [".conflicts"]
        assert (tmp_path / "index-legacy" / ".conflicts" / "big" / "edge_config.json").exists()


def test_server_legacy_move_that_fails_is_refused_clearly_and_tried_again() -> None:
    client = QdrantClient(":memory:")
    write_legacy_collection(client, "small", 3)
    # No dense vector to read a space from: its adoption fails until an operator removes it.
    client.create_collection("trooply_broken", vectors_config={},
                             sparse_vectors_config={"sparse": models.SparseVectorParams()})
    index = QdrantServerIndex(client, SPACE, promotion_threshold=THRESHOLD, settle_seconds=0)
    for _ in range(2):  # nothing remembers a failed move: each open tries again
        with pytest.raises(ServiceUnavailable) as refused:
            move_legacy_layout(index)
        assert refused.value.code == "index_unavailable" and "trooply_broken" in str(refused.value)
    client.delete_collection("trooply_broken")
    assert_served(opened(index), "small", 3)
