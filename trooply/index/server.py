"""The Qdrant server index, through qdrant-client: one collection per tenant."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from qdrant_client import QdrantClient, models

from trooply.config import Settings
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

# Flags are stored as 0/1, like on Qdrant Edge, so both engines read the same payloads.
PAYLOAD_INDEXES = {**{f: models.PayloadSchemaType.KEYWORD for f in KEYWORD_FIELDS},
                   **{f: models.PayloadSchemaType.FLOAT for f in NUMERIC_FIELDS},
                   **{f: models.PayloadSchemaType.INTEGER for f in BOOLEAN_FIELDS}}


@dataclass(frozen=True)
class ClusterLayout:
    """How each tenant's collection is laid out on a Qdrant cluster (all 1 on a single node)."""

    shard_number: int = 1
    replication_factor: int = 1
    write_consistency_factor: int = 1


class QdrantServerIndex:
    def __init__(self, client: QdrantClient, space: VectorSpace, collection_prefix: str = "trooply_",
                 layout: ClusterLayout = ClusterLayout()) -> None:
        self.client = client
        self.space = space
        self.layout = layout
        self._prefix = collection_prefix
        self._checked: set[str] = set()  # tenants whose collection matched the space

    @classmethod
    def from_settings(cls, settings: Settings, space: VectorSpace) -> "QdrantServerIndex":
        layout = ClusterLayout(settings.qdrant_shard_number, settings.qdrant_replication_factor,
                               settings.qdrant_write_consistency_factor)
        return cls(QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key), space, layout=layout)

    def upsert(self, tenant_id: str, points: Sequence[IndexPoint]) -> None:
        if not points:
            return
        if not self._exists(tenant_id):
            self._create(tenant_id)
        self.client.upsert(self._name(tenant_id), points=[
            models.PointStruct(id=point_id(p.product_id), vector={self.space.name: as_floats(p.vector)},
                               payload={**p.payload, "product_id": p.product_id}) for p in points])

    def set_payload(self, tenant_id: str, product_id: str, payload: dict[str, Any], replace: bool = False) -> None:
        # Top-level keys are replaced, others kept (all dropped with `replace`); by filter so that a
        # product not (or no longer) in the index is left alone instead of failing.
        if self._exists(tenant_id):
            only = models.Filter(must=[models.HasIdCondition(has_id=[point_id(product_id)])])
            write = self.client.overwrite_payload if replace else self.client.set_payload
            write(self._name(tenant_id), payload={**payload, "product_id": product_id},
                  points=models.FilterSelector(filter=only))

    def delete(self, tenant_id: str, product_ids: Sequence[str]) -> None:
        if product_ids and self._exists(tenant_id):
            self.client.delete(self._name(tenant_id),
                               points_selector=models.PointIdsList(points=[point_id(p) for p in product_ids]))

    def query(self, tenant_id: str, vector: np.ndarray, limit: int,
              conditions: Sequence[Condition] = (), with_vectors: bool = False) -> list[IndexHit]:
        if not self._exists(tenant_id):
            return []
        found = self.client.query_points(
            self._name(tenant_id), query=as_floats(vector), using=self.space.name, limit=limit,
            query_filter=_filter(conditions), with_payload=True, with_vectors=with_vectors).points
        return [point_hit(p, p.score, self.space.name if with_vectors else None) for p in found]

    def retrieve(self, tenant_id: str, product_ids: Sequence[str]) -> list[IndexPoint]:
        if not product_ids or not self._exists(tenant_id):
            return []
        found = self.client.retrieve(self._name(tenant_id), [point_id(p) for p in product_ids], with_payload=True,
                                     with_vectors=[self.space.name])
        return [self._point(record) for record in found]

    def scroll(self, tenant_id: str, limit: int, offset: object | None = None) -> ScrollPage:
        if not self._exists(tenant_id):
            return ScrollPage([], None)
        # `offset` is a next_offset this engine returned.
        found, after = self.client.scroll(self._name(tenant_id), limit=limit,
                                          offset=cast("models.ExtendedPointId | None", offset),
                                          with_payload=["product_id"], with_vectors=[self.space.name])
        return ScrollPage([self._point(record) for record in found], after)

    def neighbours(self, tenant_id: str, points: Sequence[IndexPoint], min_score: float,
                   limit: int) -> list[list[IndexHit]]:
        if not points or not self._exists(tenant_id):
            return [[] for _ in points]
        # One more than asked: a point is its own nearest neighbour and is dropped below.
        found = self.client.query_batch_points(self._name(tenant_id), requests=[models.QueryRequest(
            query=as_floats(p.vector), using=self.space.name, limit=limit + 1, score_threshold=min_score,
            with_payload=["product_id"]) for p in points])
        return [neighbours_without(p.product_id, response.points, limit)
                for p, response in zip(points, found, strict=True)]

    def _point(self, record: models.Record) -> IndexPoint:
        payload = point_payload(record)
        return IndexPoint(payload["product_id"], point_vector(record, self.space.name), payload)

    def count(self, tenant_id: str) -> int:
        return self.client.count(self._name(tenant_id), exact=True).count if self._exists(tenant_id) else 0

    def drop_tenant(self, tenant_id: str) -> None:
        if self.client.collection_exists(self._name(tenant_id)):
            self.client.delete_collection(self._name(tenant_id))
        self._checked.discard(tenant_id)

    def ping(self) -> None:
        self.client.get_collections()

    def close(self) -> None:
        self.client.close()

    def _name(self, tenant_id: str) -> str:
        return f"{self._prefix}{tenant_id}"

    def _exists(self, tenant_id: str) -> bool:
        # Asked on every call: another replica or worker may have created or dropped it.
        name = self._name(tenant_id)
        if not self.client.collection_exists(name):
            return False
        if tenant_id not in self._checked:
            vectors = self.client.get_collection(name).config.params.vectors
            # Dense vectors, one or named: every collection this index creates has them.
            named = vectors if isinstance(vectors, dict) else {"": cast(models.VectorParams, vectors)}
            stored = self.space.name if self.space.name in named else next(iter(named))
            self.space.check_matches(VectorSpace(stored, named[stored].size), f"index of tenant {tenant_id}")
            self._checked.add(tenant_id)
        return True

    def _create(self, tenant_id: str) -> None:
        name = self._name(tenant_id)
        try:
            self.client.create_collection(name, vectors_config={
                self.space.name: models.VectorParams(size=self.space.size, distance=models.Distance.COSINE)},
                shard_number=self.layout.shard_number, replication_factor=self.layout.replication_factor,
                write_consistency_factor=self.layout.write_consistency_factor)
        except Exception:
            if not self._exists(tenant_id):  # else another worker created it first: use it
                raise
        for key, schema in PAYLOAD_INDEXES.items():
            self.client.create_payload_index(name, key, schema)  # idempotent






def _filter(conditions: Sequence[Condition]) -> models.Filter | None:
    if not conditions:
        return None
    # `except` is must_not MatchAny, as on Edge: a product without the key is kept.
    return models.Filter(must=[_field(c) for c in conditions if c.kind != "except"],
                         must_not=[models.FieldCondition(key=c.key, match=models.MatchAny(any=list(c.value)))
                                   for c in conditions if c.kind == "except"])


def _field(condition: Condition) -> models.FieldCondition:
    if condition.kind == "eq":
        return models.FieldCondition(key=condition.key, match=models.MatchValue(value=condition.value))
    if condition.kind == "any":
        return models.FieldCondition(key=condition.key, match=models.MatchAny(any=list(condition.value)))
    return models.FieldCondition(key=condition.key, range=models.Range(**condition.range))
