"""Both index engines for a test, opened the same way: Qdrant Edge in a temporary folder, and the Qdrant server's
API through qdrant-client's in-memory mode. Each test module parametrises its own `engine` fixture with `Engine`."""

from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient

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

    def close(self) -> None:
        for index in self.opened:
            index.close()
        self.client.close()
