"""Deleting a vector space's index (a retired model's) leaves none of its stores, and nothing else is touched."""

from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from trooply.index.base import IndexPoint, SpaceIndex, TierStatus
from trooply.index.datadir_lock import DataDirLock
from trooply.index.edge import EdgeIndex
from trooply.index.server import QdrantServerIndex
from trooply.vectors import VectorSpace

SPACE = VectorSpace("clip-test", 8)
BESIDE = VectorSpace("clip-test.v2", 8)  # its name starts with the retired one's: still kept
THRESHOLD = 3
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


def points(tenant_id: str, count: int) -> list[IndexPoint]:
    return [IndexPoint(f"{tenant_id}-p{i}", np.eye(SPACE.size, dtype=np.float32)[i % SPACE.size],
                       {"product_id": f"{tenant_id}-p{i}"}) for i in range(count)]


def fill(index: SpaceIndex) -> None:
    """A shared tenant, a promoted one, and one whose tenant row is long gone (nobody drops it by name)."""
    index.upsert("small", points("small", 2))
    index.upsert("purged", points("purged", 1))
    index.upsert("big", points("big", THRESHOLD))
    index.promote("big").result()
    assert index.tier("big") == TierStatus("dedicated")


def assert_empty(index: SpaceIndex) -> None:
    for tenant_id in ("small", "purged", "big"):
        assert index.count(tenant_id) == 0 and index.tier(tenant_id) == TierStatus("shared")


def assert_kept(index: SpaceIndex) -> None:
    assert {tenant_id: index.count(tenant_id) for tenant_id in ("small", "purged", "big")} == {
        "small": 2, "purged": 1, "big": THRESHOLD}


def test_edge_destroy_removes_the_space_directory(tmp_path: Path) -> None:
    lock = DataDirLock(tmp_path)  # shared by every space's index, as the service does
    retired, kept = (EdgeIndex(tmp_path, space, promotion_threshold=THRESHOLD, lock=lock) for space in (SPACE, BESIDE))
    try:
        fill(retired)
        fill(kept)
        retired.destroy()
        assert sorted(p.name for p in (tmp_path / "index").iterdir()) == [BESIDE.name]
        assert_kept(kept)
        reopened = EdgeIndex(tmp_path, SPACE, lock=lock)
        assert_empty(reopened)
        reopened.close()
    finally:
        retired.close()
        kept.close()
        lock.release()


def test_edge_destroy_releases_a_data_dir_lock_it_owns(tmp_path: Path) -> None:
    index = EdgeIndex(tmp_path, SPACE)
    index.upsert("small", points("small", 2))
    index.destroy()
    assert not (tmp_path / "index" / SPACE.name).exists()
    EdgeIndex(tmp_path, SPACE).close()  # else refused: another owner of the data directory


def test_server_destroy_deletes_every_collection_and_alias_of_the_space(tmp_path: Path) -> None:
    path = str(tmp_path / "qdrant")
    client = QdrantClient(path=path)  # local mode: one client per path, standing for one server
    retired, kept = (QdrantServerIndex(client, space, promotion_threshold=THRESHOLD, settle_seconds=0)
                     for space in (SPACE, BESIDE))
    fill(retired)
    fill(kept)
    retired.destroy()  # closes the client it was given
    reopened = QdrantClient(path=path)
    try:
        names = {c.name for c in reopened.get_collections().collections}
        aliases = {a.alias_name for a in reopened.get_aliases().aliases}
        assert not {n for n in names | aliases if n.startswith(f"trooply_{SPACE.name}.")
                    and not n.startswith(f"trooply_{BESIDE.name}.")}
        assert_kept(QdrantServerIndex(reopened, BESIDE, promotion_threshold=THRESHOLD))
        assert_empty(QdrantServerIndex(reopened, SPACE))
    finally:
        reopened.close()
