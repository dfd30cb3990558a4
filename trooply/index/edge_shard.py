"""One Qdrant Edge shard: its lifecycle (open, create, retire) and its background HNSW build.

Measured with qdrant-edge-py 0.9.0:
- Every EdgeShard call holds the GIL for its whole duration, so calls from several threads are
  serialised (safe, never parallel). The per-shard lock below orders our own lifecycle (open,
  drop, close, HNSW swap) against use, not the engine.
- `optimize()` holds the GIL too: run in a thread it freezes the whole process (~8 s for 30k
  128-d points, minutes at 100k 768-d). So the HNSW build runs in a child process on a copy of
  the shard, writes made meanwhile are recorded and replayed on the copy, and the copy is
  swapped in; the shard's users wait only for the copy and the swap.
- Updates go to a write-ahead log first and survive a killed process without `flush()`, so
  writes are not flushed one by one; flush happens before each build copy and on close.
"""

import json
import logging
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import qdrant_edge as qe

from trooply.index.base import (
    Condition,
    HybridHits,
    HybridQuery,
    IndexHit,
    IndexPoint,
    ScrollPage,
    as_floats,
    point_hit,
    point_payload,
    point_vector,
    unit_floats,
)
from trooply.index.edge_filters import PAYLOAD_INDEXES, edge_filter, tenant_index
from trooply.index.images import (
    IMAGES_VECTOR,
    NAMED_IMAGES_PAYLOAD,
    by_closest_image,
    hybrid_hits,
    images_hit,
    images_to_store,
    stored_images,
)
from trooply.index.tiers import TENANT_KEY, StorePoint, StoreRetired
from trooply.index.words import IDENTIFIERS_KEY, WORDS_VECTOR, Words
from trooply.vectors import VectorSpace

log = logging.getLogger(__name__)

_EXACT_LIMIT = 5  # products whose identifier is exactly the query

# Niced so that request threads keep the CPU while the graph is built.
_BUILD_SCRIPT = ("import os, sys; from qdrant_edge import EdgeShard; os.nice(10); "
                 "s = EdgeShard.load(sys.argv[1]); s.optimize(); s.flush(); s.close()")


@dataclass
class ShardBuilds:
    """The HNSW builds of every shard under one index directory: one at a time, each uses every core."""

    data_dir: Path  # shards live below it; their build copies mirror their place under `work`
    work: Path
    threshold: int  # points written since the last build that trigger the next
    slot: threading.Lock = field(default_factory=threading.Lock)

    def copy_path(self, shard: Path) -> Path:
        return self.work / "new" / shard.relative_to(self.data_dir)

    def previous_path(self, shard: Path) -> Path:
        return self.work / "old" / shard.relative_to(self.data_dir)


def stored_space(path: Path, expected: str | None = None) -> VectorSpace:
    """The space a shard was created for, read from its config without opening it: its vector named
    `expected` if it has one, else its first."""
    vectors = json.loads((path / "edge_config.json").read_text())["vectors"]
    name = expected if expected is not None and expected in vectors else next(n for n in vectors if n != IMAGES_VECTOR)
    return VectorSpace(name, vectors[name]["size"])


def has_images(path: Path) -> bool:
    """Whether a shard has the multivector of products with several images (shards built before have none)."""
    return IMAGES_VECTOR in json.loads((path / "edge_config.json").read_text())["vectors"]


def _images_params(space: VectorSpace) -> qe.EdgeVectorParams:
    return qe.EdgeVectorParams(size=space.size, distance=qe.Distance.Cosine,
                               multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim))


def _vectors(point: StorePoint, name: str) -> dict[str, Any]:
    vectors: dict[str, Any] = {name: as_floats(point.vector), WORDS_VECTOR: _sparse(point.words)}
    images = images_to_store(point.images)
    if images is not None:
        vectors[IMAGES_VECTOR] = images
    return vectors


def is_shard(path: Path) -> bool:
    return (path / "edge_config.json").exists()


def has_words(path: Path) -> bool:
    """Whether a shard has its lexical vector (shards built before the lexical leg have none)."""
    return WORDS_VECTOR in json.loads((path / "edge_config.json").read_text()).get("sparse_vectors", {})


def _sparse(words: Words) -> qe.SparseVector:
    return qe.SparseVector(list(words.indices), list(words.values))


class EdgeShardStore:
    """A shard as a tenant-agnostic point store (see `tiers.PointStore`)."""

    def __init__(self, path: Path, edge: qe.EdgeShard, vector_name: str, builds: ShardBuilds) -> None:
        self.path = path
        self._edge = edge
        self._vector = vector_name
        self._builds = builds
        # Points written since the last build: the engine counts sparse vectors as indexed, so those are taken out.
        info = edge.info()
        with_words = edge.count(qe.CountRequest(filter=qe.Filter(must=[qe.HasVectorCondition(WORDS_VECTOR)]),
                                                exact=True))
        self._unindexed = max(0, info.points_count - max(0, info.indexed_vectors_count - with_words))
        self._lock = threading.Lock()
        self._closed = False
        self._building = False
        # While a copy is being built, writes are recorded here to be replayed on it.
        self._replay: list[qe.UpdateOperation] | None = None
        self._child: subprocess.Popen[bytes] | None = None

    @classmethod
    def open(cls, path: Path, space: VectorSpace, where: str, builds: ShardBuilds) -> "EdgeShardStore":
        """An existing shard, checked against the space (`where` names it in the error)."""
        previous = builds.previous_path(path)
        if not path.exists() and previous.exists():
            previous.rename(path)  # the process died between the two renames of a swap
        stored = stored_space(path, space.name)
        space.check_matches(stored, where)
        edge = qe.EdgeShard.load(str(path))
        if not has_words(path):  # built before the lexical leg: its points get their words from `fill_words`
            edge.update(qe.UpdateOperation.create_sparse_vector(WORDS_VECTOR, qe.Modifier.Idf))
            edge.update(qe.UpdateOperation.create_field_index(IDENTIFIERS_KEY, qe.PayloadSchemaType.Keyword))
        if not has_images(path):  # built before several images: its products have one each, nothing to fill
            params = _images_params(space)
            edge.update(qe.UpdateOperation.create_dense_vector(IMAGES_VECTOR, params.size, params.distance,
                                                               multivector_config=params.multivector_config))
        return cls(path, edge, stored.name, builds)

    @classmethod
    def create(cls, path: Path, space: VectorSpace, builds: ShardBuilds, shared: bool) -> "EdgeShardStore":
        """A new, empty shard; `shared`: partitioned by tenant."""
        path.parent.mkdir(parents=True, exist_ok=True)
        vectors = {space.name: qe.EdgeVectorParams(size=space.size, distance=qe.Distance.Cosine),
                   IMAGES_VECTOR: _images_params(space)}
        words = {WORDS_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)}
        edge = qe.EdgeShard.create(str(path), qe.EdgeConfig(vectors=vectors, sparse_vectors=words))
        indexes = {**PAYLOAD_INDEXES, IDENTIFIERS_KEY: qe.PayloadSchemaType.Keyword,
                   **({TENANT_KEY: tenant_index()} if shared else {})}
        for key, schema in indexes.items():
            edge.update(qe.UpdateOperation.create_field_index(key, schema))
        return cls(path, edge, space.name, builds)

    @property
    def building(self) -> bool:
        return self._building

    @property
    def recording(self) -> bool:
        """Whether a build copy has been taken and writes are being recorded for it."""
        return self._replay is not None

    # PointStore

    def upsert(self, points: Sequence[StorePoint]) -> None:
        if not points:
            return
        operation = qe.UpdateOperation.upsert_points([qe.Point(p.id, _vectors(p, self._vector), p.payload)
                                                      for p in points])
        with self._using():
            self._apply(operation)
            self._unindexed += len(points)
            self._build_if_due()

    def set_payload(self, point_id: str, payload: dict[str, Any], replace: bool, scope: Sequence[Condition]) -> None:
        # By filter, so that a product not (or no longer) in the index is left alone instead of failing.
        write = qe.UpdateOperation.overwrite_payload_by_filter if replace else qe.UpdateOperation.set_payload_by_filter
        with self._using():
            self._apply(write(self._only(scope, [point_id]), payload))

    def delete(self, point_ids: Sequence[str], scope: Sequence[Condition]) -> None:
        with self._using():
            self._apply(qe.UpdateOperation.delete_points_by_filter(self._only(scope, point_ids)))

    def delete_matching(self, scope: Sequence[Condition]) -> None:
        with self._using():
            self._apply(qe.UpdateOperation.delete_points_by_filter(self._only(scope)))

    def query(self, vector: np.ndarray, limit: int, conditions: Sequence[Condition],
              with_vectors: bool) -> list[IndexHit]:
        selected = edge_filter(conditions)
        target = unit_floats(vector)
        keep = self._vector if with_vectors else None
        requests = [qe.QueryRequest(limit=limit, query=qe.Query.Nearest(target, using=self._vector),
                                    filter=selected, with_payload=True, with_vector=with_vectors),
                    self._images_request(target, limit, selected, keep)]
        with self._using():
            main, images = self._edge.query_batch(qe.QueryBatchRequest(requests))
        return by_closest_image([point_hit(p, p.score, keep) for p in main],
                                [images_hit(p, target, keep) for p in images], limit)

    def _images_request(self, target: list[float], limit: int, selected: qe.Filter | None,
                        keep: str | None) -> qe.QueryRequest:
        """The products of several images, scored by their closest (sent back with their images to say which)."""
        sent_back = [IMAGES_VECTOR, *([keep] if keep else [])]
        return qe.QueryRequest(limit=limit, query=qe.Query.Nearest([target], using=IMAGES_VECTOR),
                               filter=selected, with_payload=True, with_vector=sent_back)

    def hybrid(self, query: HybridQuery, conditions: Sequence[Condition],
               corpus: Sequence[Condition]) -> HybridHits:
        selected = edge_filter(conditions)
        target = unit_floats(query.vector)
        nearest = qe.Query.Nearest(target, using=self._vector)
        keep = self._vector if query.with_vectors else None
        requests = [qe.QueryRequest(limit=query.limit, query=nearest, filter=selected, with_payload=True,
                                    with_vector=query.with_vectors),
                    self._images_request(target, query.limit, selected, keep)]
        if query.words:
            idf = qe.SearchParams(idf=qe.IdfParams(corpus=edge_filter(corpus))) if corpus else None
            requests.append(qe.QueryRequest(limit=query.words_wanted, query=qe.Query.Nearest(_sparse(query.words),
                                                                                    using=WORDS_VECTOR),
                                            filter=selected, params=idf, score_threshold=query.words_min_score,
                                            with_payload=True,
                                            with_vector=[WORDS_VECTOR, self._vector, IMAGES_VECTOR]))
        if query.identifier:
            identified = edge_filter([*conditions, Condition(IDENTIFIERS_KEY, "eq", query.identifier)])
            requests.append(qe.QueryRequest(limit=_EXACT_LIMIT, query=nearest, filter=identified, with_payload=True,
                                            with_vector=query.with_vectors))
        with self._using():
            found = iter(self._edge.query_batch(qe.QueryBatchRequest(requests)))
            tokens = query.words.indices if query.words else ()
            main_leg, images_leg = list(next(found)), list(next(found))
            by_words = list(next(found)) if query.words else []
            exact = list(next(found)) if query.identifier else []
        return hybrid_hits(query, self._vector, target, tokens, main_leg, images_leg, by_words, exact)

    def set_words(self, point_id: str, words: Words, scope: Sequence[Condition]) -> None:
        with self._using():
            if self._edge.count(qe.CountRequest(filter=self._only(scope, [point_id]), exact=True)):
                self._apply(qe.UpdateOperation.update_vectors([qe.PointVectors(point_id,
                                                                               {WORDS_VECTOR: _sparse(words)})]))

    def without_words(self, limit: int) -> list[StorePoint]:
        request = qe.ScrollRequest(limit=limit, filter=qe.Filter(must_not=[qe.HasVectorCondition(WORDS_VECTOR)]),
                                   with_payload=True, with_vector=False)
        with self._using():
            found, _ = self._edge.scroll(request)
        return [StorePoint(str(record.id), np.zeros(0, dtype=np.float32), point_payload(record)) for record in found]

    def give_words(self, points: Sequence[StorePoint]) -> None:
        with self._using():
            for point in points:
                still_without = qe.Filter(must=[qe.HasIdCondition({point.id})],
                                          must_not=[qe.HasVectorCondition(WORDS_VECTOR)])
                if self._edge.count(qe.CountRequest(filter=still_without, exact=True)):
                    self._apply(qe.UpdateOperation.set_payload_by_filter(still_without, point.payload))
                    self._apply(qe.UpdateOperation.update_vectors(
                        [qe.PointVectors(point.id, {WORDS_VECTOR: _sparse(point.words)})]))

    def neighbours(self, vectors: Sequence[np.ndarray], min_score: float, limit: int,
                   conditions: Sequence[Condition]) -> list[list[IndexHit]]:
        selected = edge_filter(conditions)
        requests = []
        targets = [unit_floats(vector) for vector in vectors]
        for target in targets:  # each against the main images and against every image of the products of several
            requests += [qe.QueryRequest(limit=limit, query=qe.Query.Nearest(target, using=self._vector),
                                         filter=selected, with_payload=NAMED_IMAGES_PAYLOAD, score_threshold=min_score),
                         qe.QueryRequest(limit=limit, query=qe.Query.Nearest([target], using=IMAGES_VECTOR),
                                         filter=selected, with_payload=NAMED_IMAGES_PAYLOAD,
                                         with_vector=[IMAGES_VECTOR], score_threshold=min_score)]
        with self._using():
            found = self._edge.query_batch(qe.QueryBatchRequest(requests))
        return [by_closest_image([point_hit(p, p.score) for p in found[2 * i]],
                                 [images_hit(p, target, None) for p in found[2 * i + 1]], limit)
                for i, target in enumerate(targets)]

    def retrieve(self, point_ids: Sequence[str], conditions: Sequence[Condition]) -> list[IndexPoint]:
        request = qe.ScrollRequest(limit=len(point_ids), filter=edge_filter(conditions, point_ids), with_payload=True,
                                   with_vector=True)
        with self._using():
            found, _ = self._edge.scroll(request)
        return [self._point(record) for record in found]

    def scroll(self, limit: int, offset: object | None, conditions: Sequence[Condition],
               full_payload: bool) -> ScrollPage:
        request = qe.ScrollRequest(offset=cast("qe.PointId | None", offset), limit=limit,
                                   filter=edge_filter(conditions),
                                   with_payload=True if full_payload else NAMED_IMAGES_PAYLOAD, with_vector=True)
        with self._using():
            found, after = self._edge.scroll(request)
        return ScrollPage([self._point(record) for record in found], after)

    def count(self, conditions: Sequence[Condition]) -> int:
        with self._using():
            return self._edge.count(qe.CountRequest(filter=edge_filter(conditions), exact=True))

    # Lifecycle

    def retire(self) -> None:
        """Flushes and closes the shard; later calls raise StoreRetired."""
        with self._lock:
            if self._closed:
                return
            if self._child is not None:
                self._child.kill()  # the copy it was building is discarded by the build thread
            self._edge.flush()
            self._edge.close()
            self._closed = True

    def build_if_due(self) -> None:
        with self._using():
            self._build_if_due()

    def build_graph(self) -> None:
        """Waits for a build under way, then builds the graph of every point written since, before returning."""
        while True:
            with self._using():
                if not self._building:
                    if self._unindexed == 0:
                        return
                    self._building = True
                    break
            time.sleep(0.1)
        self._build()

    @contextmanager
    def _using(self) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise StoreRetired(str(self.path))
            yield

    def _apply(self, operation: qe.UpdateOperation) -> None:
        self._edge.update(operation)
        if self._replay is not None:
            self._replay.append(operation)

    def _only(self, scope: Sequence[Condition], point_ids: Sequence[str] | None = None) -> qe.Filter:
        selected = edge_filter(scope, point_ids)
        assert selected is not None, "a write by filter names its points or its scope"
        return selected

    def _point(self, record: qe.Record) -> IndexPoint:
        payload = point_payload(record)
        return IndexPoint(payload["product_id"], point_vector(record, self._vector), payload, stored_images(record))

    def _build_if_due(self) -> None:
        if self._unindexed >= self._builds.threshold and not self._building:
            self._building = True
            threading.Thread(target=self._build, daemon=True, name=f"hnsw-{self.path.name}").start()

    def _build(self) -> None:
        """Builds the HNSW graph on a copy in a child process, then swaps the copy in."""
        copy = self._builds.copy_path(self.path)
        try:
            with self._builds.slot:
                shutil.rmtree(copy, ignore_errors=True)  # left over by a crash
                copy.parent.mkdir(parents=True, exist_ok=True)
                with self._lock:
                    if self._closed:
                        return
                    self._edge.flush()
                    shutil.copytree(self.path, copy)  # copying releases the GIL: others carry on
                    self._unindexed, self._replay = 0, []
                    child = self._child = subprocess.Popen([sys.executable, "-c", _BUILD_SCRIPT, str(copy)])
                returncode = child.wait()
                with self._lock:
                    if self._closed:
                        return
                    if returncode != 0:
                        raise RuntimeError(f"the build process exited with {returncode}")
                    self._swap(copy)
        except Exception:
            log.exception("HNSW build of %s failed; its queries stay exhaustive", self.path)
        finally:
            with self._lock:
                self._building, self._replay, self._child = False, None, None
            shutil.rmtree(copy, ignore_errors=True)

    def _swap(self, copy: Path) -> None:
        """Replaces the shard by its built copy and replays the writes made during the build."""
        previous = self._builds.previous_path(self.path)
        shutil.rmtree(previous, ignore_errors=True)
        previous.parent.mkdir(parents=True, exist_ok=True)
        self._edge.close()
        self.path.rename(previous)
        copy.rename(self.path)
        try:
            self._edge = qe.EdgeShard.load(str(self.path))
        except Exception:
            # Back to the shard as it was: its WAL holds every write, nothing is lost.
            self.path.rename(copy)
            previous.rename(self.path)
            self._edge = qe.EdgeShard.load(str(self.path))
            raise
        for operation in self._replay or ():
            self._edge.update(operation)
        shutil.rmtree(previous)
