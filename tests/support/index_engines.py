"""Both index engines for a test, opened the same way: Qdrant Edge in a temporary folder, and the Qdrant server's
API through qdrant-client's in-memory mode. Each test module parametrises its own `engine` fixture with `Engine`."""

from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe
from qdrant_client import QdrantClient, models

from trooply.index.base import shared_point_id
from trooply.index.edge import EdgeIndex
from trooply.index.server import QdrantServerIndex
from trooply.index.tiers import TieredIndex
from trooply.vectors import VectorSpace

SPACE = VectorSpace("clip-test", 8)


def unit(i: int) -> np.ndarray:
    vector = np.zeros(SPACE.size, dtype=np.float32)
    vector[i % SPACE.size] = 1.0
    return vector


class Engine:
    """`languages`: each tenant's words language (English when unset), as the container's TenantLanguages gives it."""

    def __init__(self, kind: str, tmp_path: Path, server_settle_seconds: float | None = None) -> None:
        self.kind, self.tmp_path = kind, tmp_path
        self.client = QdrantClient(":memory:")
        self.languages: dict[str, str] = {}
        self._settle = {} if server_settle_seconds is None else {"settle_seconds": server_settle_seconds}
        self.opened: list[TieredIndex] = []

    def open(self) -> TieredIndex:
        index: TieredIndex = (EdgeIndex(self.tmp_path, SPACE) if self.kind == "edge"
                              else QdrantServerIndex(self.client, SPACE, **self._settle))
        index.languages = lambda tenant_id: self.languages.get(tenant_id, "english")
        self.opened.append(index)
        return index

    def write_old_shared_store(self, tenant_id: str, points: dict[str, tuple[list[float], dict[str, Any]]]) -> None:
        """The shared store as an index from before the words leg and several images wrote it (the main vector
        only), before `open`: {product id: (vector, payload)}."""
        if self.kind == "edge":
            config = qe.EdgeConfig(vectors={SPACE.name: qe.EdgeVectorParams(size=SPACE.size,
                                                                            distance=qe.Distance.Cosine)})
            shard = qe.EdgeShard.create(str(self.tmp_path / "index" / SPACE.name / "shared"), config)
            shard.update(qe.UpdateOperation.upsert_points([
                qe.Point(shared_point_id(tenant_id, pid), {SPACE.name: vector}, payload)
                for pid, (vector, payload) in points.items()]))
            shard.flush()
            shard.close()
            return
        name = f"trooply_{SPACE.name}.shared"
        self.client.create_collection(name, vectors_config={
            SPACE.name: models.VectorParams(size=SPACE.size, distance=models.Distance.COSINE)})
        self.client.upsert(name, [models.PointStruct(id=shared_point_id(tenant_id, pid), vector={SPACE.name: vector},
                                                     payload=payload) for pid, (vector, payload) in points.items()])

    def close(self) -> None:
        for index in self.opened:
            index.close()
        self.client.close()
