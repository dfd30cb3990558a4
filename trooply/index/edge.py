"""Qdrant Edge, the embedded index: one shard directory per tenant under `data_dir/index/`.

Measured with qdrant-edge-py 0.9.0:
- Every EdgeShard call holds the GIL for its whole duration, so calls from several threads are
  serialised (safe, never parallel). The per-shard lock below orders our own lifecycle (open,
  drop, close, HNSW swap) against use, not the engine.
- `optimize()` holds the GIL too: run in a thread it freezes the whole process (~8 s for 30k
  128-d points, minutes at 100k 768-d). So the HNSW build runs in a child process on a copy of
  the shard, writes made meanwhile are recorded and replayed on the copy, and the copy is
  swapped in; the tenant waits only for the copy and the swap.
- Updates go to a write-ahead log first and survive a killed process without `flush()`, so
  writes are not flushed one by one; flush happens before each build copy and on close.
"""

import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import qdrant_edge as qe

from trooply.errors import ServiceUnavailable
from trooply.index.base import (
    Condition,
    IndexHit,
    IndexPoint,
    ScrollPage,
    as_floats,
    neighbours_without,
    point_hit,
    point_id,
    point_payload,
    point_vector,
)
from trooply.index.filters import BOOLEAN_FIELDS, KEYWORD_FIELDS, NUMERIC_FIELDS
from trooply.vectors import VectorSpace

log = logging.getLogger(__name__)

# Flags are stored as 0/1 (a boolean match is turned into an integer by Qdrant Edge).
PAYLOAD_INDEXES = {**{f: qe.PayloadSchemaType.Keyword for f in KEYWORD_FIELDS},
                   **{f: qe.PayloadSchemaType.Float for f in NUMERIC_FIELDS},
                   **{f: qe.PayloadSchemaType.Integer for f in BOOLEAN_FIELDS}}

# Niced so that request threads keep the CPU while the graph is built.
_BUILD_SCRIPT = ("import os, sys; from qdrant_edge import EdgeShard; os.nice(10); "
                 "s = EdgeShard.load(sys.argv[1]); s.optimize(); s.flush(); s.close()")


@dataclass
class _Shard:
    path: Path
    edge: qe.EdgeShard
    unindexed: int  # points written since the last HNSW build
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False
    building: bool = False
    # While a copy is being built, writes are recorded here to be replayed on it.
    replay: list[qe.UpdateOperation] | None = None
    child: subprocess.Popen[bytes] | None = None

    def apply(self, operation: qe.UpdateOperation) -> None:
        self.edge.update(operation)
        if self.replay is not None:
            self.replay.append(operation)

    def retire(self) -> None:
        if self.child is not None:
            self.child.kill()  # the copy it was building is discarded by the build thread
        self.edge.flush()
        self.edge.close()
        self.closed = True


class EdgeIndex:
    def __init__(self, data_dir: Path, space: VectorSpace, optimize_threshold: int = 20000) -> None:
        self.space = space
        self._data_dir = data_dir
        self._root = data_dir / "index"
        self._work = data_dir / "index-build"
        self._threshold = optimize_threshold
        self._shards: dict[str, _Shard] = {}
        self._lock = threading.Lock()
        self._build_slot = threading.Lock()  # one build at a time: each uses every core
        self._closed = False
        data_dir.mkdir(parents=True, exist_ok=True)
        # A second process opening a shard breaks the first one's next flush: own the directory.
        self._lock_file = open(data_dir / "index.lock", "a")  # noqa: SIM115 -- held, and locked, until close()
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise ServiceUnavailable(
                f"another Trooply process owns the data directory {data_dir}; stop it or use "
                "another TROOPLY_DATA_DIR", code="data_dir_locked") from None

    def upsert(self, tenant_id: str, points: Sequence[IndexPoint]) -> None:
        if not points:
            return
        operation = qe.UpdateOperation.upsert_points([
            qe.Point(point_id(p.product_id), {self.space.name: as_floats(p.vector)},
                     {**p.payload, "product_id": p.product_id}) for p in points])
        with self._using(tenant_id, create=True) as shard:
            assert shard is not None
            shard.apply(operation)
            shard.unindexed += len(points)
            if shard.unindexed >= self._threshold and not shard.building:
                shard.building = True
                threading.Thread(target=self._build, args=(tenant_id, shard), daemon=True,
                                 name=f"hnsw-{tenant_id}").start()

    def set_payload(self, tenant_id: str, product_id: str, payload: dict[str, Any], replace: bool = False) -> None:
        # Top-level keys are replaced, others kept (all dropped with `replace`); by filter so that a
        # product not (or no longer) in the index is left alone instead of failing.
        only = qe.Filter(must=[qe.HasIdCondition({point_id(product_id)})])
        write = qe.UpdateOperation.overwrite_payload_by_filter if replace else qe.UpdateOperation.set_payload_by_filter
        with self._using(tenant_id, create=False) as shard:
            if shard is not None:
                shard.apply(write(only, {**payload, "product_id": product_id}))

    def delete(self, tenant_id: str, product_ids: Sequence[str]) -> None:
        with self._using(tenant_id, create=False) as shard:
            if shard is not None and product_ids:
                shard.apply(qe.UpdateOperation.delete_points([point_id(p) for p in product_ids]))

    def query(self, tenant_id: str, vector: np.ndarray, limit: int,
              conditions: Sequence[Condition] = (), with_vectors: bool = False) -> list[IndexHit]:
        request = qe.QueryRequest(limit=limit, query=qe.Query.Nearest(as_floats(vector), using=self.space.name),
                                  filter=_filter(conditions), with_payload=True, with_vector=with_vectors)
        with self._using(tenant_id, create=False) as shard:
            found = shard.edge.query(request) if shard is not None else []
        return [point_hit(p, p.score, self.space.name if with_vectors else None) for p in found]

    def retrieve(self, tenant_id: str, product_ids: Sequence[str]) -> list[IndexPoint]:
        with self._using(tenant_id, create=False) as shard:
            found = shard.edge.retrieve([point_id(p) for p in product_ids], with_payload=True,
                                        with_vector=True) if shard is not None and product_ids else []
        return [self._point(record) for record in found]

    def scroll(self, tenant_id: str, limit: int, offset: object | None = None) -> ScrollPage:
        # `offset` is a next_offset this engine returned.
        request = qe.ScrollRequest(offset=cast("qe.PointId | None", offset), limit=limit, with_payload=["product_id"],
                                   with_vector=True)
        with self._using(tenant_id, create=False) as shard:
            found, after = shard.edge.scroll(request) if shard is not None else ([], None)
        return ScrollPage([self._point(record) for record in found], after)

    def neighbours(self, tenant_id: str, points: Sequence[IndexPoint], min_score: float,
                   limit: int) -> list[list[IndexHit]]:
        # One more than asked: a point is its own nearest neighbour and is dropped below.
        batch = qe.QueryBatchRequest([qe.QueryRequest(
            limit=limit + 1, query=qe.Query.Nearest(as_floats(p.vector), using=self.space.name),
            with_payload=["product_id"], score_threshold=min_score) for p in points])
        with self._using(tenant_id, create=False) as shard:
            found = shard.edge.query_batch(batch) if shard is not None and points else [[] for _ in points]
        return [neighbours_without(p.product_id, hits, limit) for p, hits in zip(points, found, strict=True)]

    def _point(self, record: qe.Record) -> IndexPoint:
        payload = point_payload(record)
        return IndexPoint(payload["product_id"], point_vector(record, self.space.name), payload)

    def count(self, tenant_id: str) -> int:
        with self._using(tenant_id, create=False) as shard:
            return shard.edge.count(qe.CountRequest(exact=True)) if shard is not None else 0

    def drop_tenant(self, tenant_id: str) -> None:
        # Under the index lock so that no concurrent write reopens the shard while it is deleted.
        with self._lock:
            shard = self._shards.pop(tenant_id, None)
            if shard is not None:
                with shard.lock:
                    shard.retire()
            shutil.rmtree(self._path(tenant_id), ignore_errors=True)

    def ping(self) -> None:
        if self._closed:
            raise ServiceUnavailable("the index is closed", code="index_closed")
        if not os.access(self._data_dir, os.R_OK | os.W_OK | os.X_OK):
            raise ServiceUnavailable(f"data directory {self._data_dir} is not accessible",
                                     code="index_unavailable")

    def close(self) -> None:
        with self._lock:
            shards, self._shards, self._closed = list(self._shards.values()), {}, True
        for shard in shards:
            with shard.lock:
                shard.retire()
        self._lock_file.close()  # releases the flock

    @contextmanager
    def _using(self, tenant_id: str, create: bool) -> Iterator[_Shard | None]:
        """The tenant's open shard, locked; None when it has none and `create` is false."""
        while True:
            shard = self._get(tenant_id, create)
            if shard is None:
                yield None
                return
            with shard.lock:
                if not shard.closed:  # else dropped meanwhile: look again
                    yield shard
                    return

    def _get(self, tenant_id: str, create: bool) -> _Shard | None:
        with self._lock:
            if self._closed:
                raise ServiceUnavailable("the index is closed", code="index_closed")
            shard = self._shards.get(tenant_id)
            if shard is None:
                shard = self._open(tenant_id, create)
                if shard is not None:
                    self._shards[tenant_id] = shard
            return shard

    def _open(self, tenant_id: str, create: bool) -> _Shard | None:
        path = self._path(tenant_id)
        previous = self._work / "old" / tenant_id
        if not path.exists() and previous.exists():
            previous.rename(path)  # the process died between the two renames of a swap
        if (path / "edge_config.json").exists():
            self._check_space(path, tenant_id)
            edge = qe.EdgeShard.load(str(path))
            info = edge.info()
            return _Shard(path, edge, info.points_count - info.indexed_vectors_count)
        if not create:
            return None
        vectors = {self.space.name: qe.EdgeVectorParams(size=self.space.size, distance=qe.Distance.Cosine)}
        edge = qe.EdgeShard.create(str(path), qe.EdgeConfig(vectors=vectors))
        for key, schema in PAYLOAD_INDEXES.items():
            edge.update(qe.UpdateOperation.create_field_index(key, schema))
        return _Shard(path, edge, 0)

    def _check_space(self, path: Path, tenant_id: str) -> None:
        vectors = json.loads((path / "edge_config.json").read_text())["vectors"]
        name = self.space.name if self.space.name in vectors else next(iter(vectors))
        self.space.check_matches(VectorSpace(name, vectors[name]["size"]), f"index of tenant {tenant_id}")

    def _path(self, tenant_id: str) -> Path:
        if tenant_id in ("", ".", "..") or "/" in tenant_id or "\0" in tenant_id:
            raise ValueError(f"invalid tenant id {tenant_id!r}")  # it names a directory
        return self._root / tenant_id

    def _build(self, tenant_id: str, shard: _Shard) -> None:
        """Builds the HNSW graph on a copy in a child process, then swaps the copy in."""
        copy = self._work / "new" / tenant_id
        try:
            with self._build_slot:
                shutil.rmtree(copy, ignore_errors=True)  # left over by a crash
                with shard.lock:
                    if shard.closed:
                        return
                    shard.edge.flush()
                    shutil.copytree(shard.path, copy)  # copying releases the GIL: others carry on
                    shard.unindexed, shard.replay = 0, []
                    child = shard.child = subprocess.Popen([sys.executable, "-c", _BUILD_SCRIPT, str(copy)])
                returncode = child.wait()
                with shard.lock:
                    if shard.closed:
                        return
                    if returncode != 0:
                        raise RuntimeError(f"the build process exited with {returncode}")
                    self._swap(shard, copy)
        except Exception:
            log.exception("HNSW build for tenant %s failed; its queries stay exhaustive", tenant_id)
        finally:
            with shard.lock:
                shard.building, shard.replay, shard.child = False, None, None
            shutil.rmtree(copy, ignore_errors=True)

    def _swap(self, shard: _Shard, copy: Path) -> None:
        """Replaces the shard by its built copy and replays the writes made during the build."""
        previous = self._work / "old" / shard.path.name
        shutil.rmtree(previous, ignore_errors=True)
        previous.parent.mkdir(parents=True, exist_ok=True)
        shard.edge.close()
        shard.path.rename(previous)
        copy.rename(shard.path)
        try:
            shard.edge = qe.EdgeShard.load(str(shard.path))
        except Exception:
            # Back to the shard as it was: its WAL holds every write, nothing is lost.
            shard.path.rename(copy)
            previous.rename(shard.path)
            shard.edge = qe.EdgeShard.load(str(shard.path))
            raise
        for operation in shard.replay or ():
            shard.edge.update(operation)
        shutil.rmtree(previous)






def _filter(conditions: Sequence[Condition]) -> qe.Filter | None:
    if not conditions:
        return None
    # `except` is must_not MatchAny: a product without the key is kept (MatchExcept drops it).
    return qe.Filter(must=[_field(c) for c in conditions if c.kind != "except"],
                     must_not=[qe.FieldCondition(c.key, match=qe.MatchAny(list(c.value)))
                               for c in conditions if c.kind == "except"])


def _field(condition: Condition) -> qe.FieldCondition:
    if condition.kind == "eq":
        return qe.FieldCondition(condition.key, match=qe.MatchValue(condition.value))
    if condition.kind == "any":
        return qe.FieldCondition(condition.key, match=qe.MatchAny(list(condition.value)))
    return qe.FieldCondition(condition.key, range=qe.RangeFloat(**condition.range))
