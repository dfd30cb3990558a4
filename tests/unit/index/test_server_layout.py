"""Collections on a Qdrant cluster get the shard, replica and write-consistency numbers from settings."""

import numpy as np
from qdrant_client import QdrantClient

from trooply.config import Settings
from trooply.index.base import IndexPoint
from trooply.index.server import ClusterLayout, QdrantServerIndex
from trooply.vectors import VectorSpace

SPACE = VectorSpace("tiny__random", 4)


class RecordingClient:
    """The real in-memory client, remembering how collections were created (local mode ignores layout)."""

    def __init__(self) -> None:
        self._client = QdrantClient(":memory:")
        self.created: list[dict] = []

    def create_collection(self, name, **kwargs):
        self.created.append({"name": name, **kwargs})
        return self._client.create_collection(name, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_collections_are_created_with_the_cluster_layout():
    client = RecordingClient()
    index = QdrantServerIndex(client, SPACE, layout=ClusterLayout(shard_number=6, replication_factor=2,
                                                                    write_consistency_factor=2))
    index.upsert("t1", [IndexPoint("p1", np.ones(4, np.float32), {})])
    (created,) = client.created
    assert (created["shard_number"], created["replication_factor"], created["write_consistency_factor"]) == (6, 2, 2)
    assert index.count("t1") == 1


def test_layout_comes_from_settings():
    settings = Settings(qdrant_url="http://127.0.0.1:6333", qdrant_shard_number=3, qdrant_replication_factor=2,
                        qdrant_write_consistency_factor=1)
    assert QdrantServerIndex.from_settings(settings, SPACE).layout == ClusterLayout(3, 2, 1)
