"""The Qdrant server index, through qdrant-client.

Per vector space: one shared collection `<prefix><space>.shared`, partitioned by tenant (a keyword
index marked `is_tenant`), and for each promoted tenant an alias `<prefix><space>.tenant.<tenant>`
onto its own collection (`….data`, or the tenant's collection from before tiers). Creating the alias
is the atomic switch of a promotion; a `….data` collection without its alias is a promotion under
way, and every process mirrors the tenant's writes into it.

Promotion guarantee with several writing processes: writes made through any process after the
target exists (plus a settle delay for calls in flight) are mirrored into it, and a catch-up pass
compares version stamps and copies again whatever raced the copy; a write still in flight in
another process past the settle delay is the one case not covered. Likewise the tenant's shared points
are deleted a settle delay after the switch, for reads of other processes that chose the shared
collection just before it.
"""

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from trooply.config import Settings
from trooply.errors import ServiceUnavailable
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
from trooply.index.images import (
    IMAGES_VECTOR,
    NAMED_IMAGES_PAYLOAD,
    by_closest_image,
    hybrid_hits,
    images_hit,
    images_to_store,
    stored_images,
)
from trooply.index.server_filters import PAYLOAD_INDEXES, TENANT_INDEX, server_filter
from trooply.index.tiers import TENANT_KEY, StorePoint, StoreRetired, TieredIndex
from trooply.index.words import IDENTIFIERS_KEY, WORDS_VECTOR, Words
from trooply.vectors import VectorSpace

log = logging.getLogger(__name__)

_EXACT_LIMIT = 5  # products whose identifier is exactly the query
_WORDS_CONFIG = models.SparseVectorParams(modifier=models.Modifier.IDF)


@dataclass(frozen=True)
class ClusterLayout:
    """How each collection is laid out on a Qdrant cluster (all 1 on a single node)."""

    shard_number: int = 1
    replication_factor: int = 1
    write_consistency_factor: int = 1


class CollectionStore:
    """A collection (or an alias of one) as a tenant-agnostic point store (see `tiers.PointStore`). A call that
    finds the collection deleted (by another process: a tenant dropped, a model's vectors dropped) raises
    `StoreRetired`, after `on_missing` let the index forget it, so the caller looks the store up again."""

    def __init__(self, client: QdrantClient, name: str, vector_name: str,
                 on_missing: Callable[[str], None] = lambda _name: None, words: bool = True) -> None:
        """`words`: False for an older collection the server could not give a words vector: its searches are
        pictures only (and exact identifiers), its writes carry no words."""
        self.client = client
        self.name = name
        self._vector = vector_name
        self._on_missing = on_missing
        self._words = words

    def upsert(self, points: Sequence[StorePoint]) -> None:
        if not points:  # a catch-up pass whose stale points were all deleted meanwhile: Qdrant refuses empty writes
            return
        with self._retired_when_missing():
            self.client.upsert(self.name, points=[
                models.PointStruct(id=p.id, vector=self._vectors(p), payload=p.payload) for p in points])

    def _vectors(self, point: StorePoint) -> dict[str, Any]:
        vectors: dict[str, Any] = {self._vector: as_floats(point.vector)}
        if self._words:  # else an older collection the server could not give a words vector
            vectors[WORDS_VECTOR] = _sparse(point.words)
        images = images_to_store(point.images)
        if images is not None:
            vectors[IMAGES_VECTOR] = images
        return vectors

    def set_payload(self, point_id: str, payload: dict[str, Any], replace: bool, scope: Sequence[Condition]) -> None:
        # By filter, so that a product not (or no longer) in the index is left alone instead of failing.
        write = self.client.overwrite_payload if replace else self.client.set_payload
        with self._retired_when_missing():
            write(self.name, payload=payload, points=models.FilterSelector(filter=self._only(scope, [point_id])))

    def delete(self, point_ids: Sequence[str], scope: Sequence[Condition]) -> None:
        with self._retired_when_missing():
            self.client.delete(self.name, points_selector=models.FilterSelector(filter=self._only(scope, point_ids)))

    def delete_matching(self, scope: Sequence[Condition]) -> None:
        with self._retired_when_missing():
            self.client.delete(self.name, points_selector=models.FilterSelector(filter=self._only(scope)))

    def query(self, vector: np.ndarray, limit: int, conditions: Sequence[Condition],
              with_vectors: bool) -> list[IndexHit]:
        selected = server_filter(conditions)
        target = unit_floats(vector)
        keep = self._vector if with_vectors else None
        requests = [models.QueryRequest(query=target, using=self._vector, limit=limit, filter=selected,
                                        with_payload=True, with_vector=with_vectors),
                    self._images_request(target, limit, selected, keep)]
        with self._retired_when_missing():
            main, images = [r.points for r in self.client.query_batch_points(self.name, requests=requests)]
        return by_closest_image([point_hit(p, p.score, keep) for p in main],
                                [images_hit(p, target, keep) for p in images], limit)

    @staticmethod
    def _images_request(target: list[float], limit: int, selected: models.Filter | None,
                        keep: str | None) -> models.QueryRequest:
        """The products of several images, scored by their closest (sent back with their images to say which)."""
        return models.QueryRequest(query=[target], using=IMAGES_VECTOR, limit=limit, filter=selected,
                                   with_payload=True, with_vector=[IMAGES_VECTOR, *([keep] if keep else [])])

    def hybrid(self, query: HybridQuery, conditions: Sequence[Condition],
               corpus: Sequence[Condition]) -> HybridHits:
        selected = server_filter(conditions)
        vector = unit_floats(query.vector)
        keep = self._vector if query.with_vectors else None
        requests = [models.QueryRequest(query=vector, using=self._vector, limit=query.limit, filter=selected,
                                        with_payload=True, with_vector=query.with_vectors),
                    self._images_request(vector, query.limit, selected, keep)]
        searched_words = query.words if self._words else None
        if searched_words:
            idf = (models.SearchParams(idf=models.IdfCorpusParams(corpus=cast(models.Filter, server_filter(corpus))))
                   if corpus else None)
            requests.append(models.QueryRequest(query=_sparse(searched_words), using=WORDS_VECTOR,
                                                limit=query.words_wanted, filter=selected, params=idf,
                                                score_threshold=query.words_min_score, with_payload=True,
                                                with_vector=[WORDS_VECTOR, self._vector, IMAGES_VECTOR]))
        if query.identifier:
            requests.append(models.QueryRequest(
                query=vector, using=self._vector, limit=_EXACT_LIMIT, with_payload=True, with_vector=query.with_vectors,
                filter=server_filter([*conditions, Condition(IDENTIFIERS_KEY, "eq", query.identifier)])))
        with self._retired_when_missing():
            found = iter([response.points for response in self.client.query_batch_points(self.name,
                                                                                         requests=requests)])
            tokens = searched_words.indices if searched_words else ()
            main_leg, images_leg = next(found), next(found)
            by_words = next(found) if searched_words else []
            exact = next(found) if query.identifier else []
        return hybrid_hits(query, self._vector, vector, tokens, main_leg, images_leg, by_words, exact)

    def set_words(self, point_id: str, words: Words, scope: Sequence[Condition]) -> None:
        self._write_words([point_id], {point_id: words}, self._only(scope, [point_id]))

    def without_words(self, limit: int) -> list[StorePoint]:
        if not self._words:
            return []
        with self._retired_when_missing():
            found, _ = self.client.scroll(self.name, limit=limit, scroll_filter=_WITHOUT_WORDS, with_payload=True,
                                          with_vectors=False)
        return [StorePoint(str(record.id), np.zeros(0, dtype=np.float32), point_payload(record)) for record in found]

    def give_words(self, points: Sequence[StorePoint]) -> None:
        for point in points:
            still_without = models.Filter(must=[models.HasIdCondition(has_id=[point.id])],
                                          must_not=[models.HasVectorCondition(has_vector=WORDS_VECTOR)])
            with self._retired_when_missing():
                self.client.set_payload(self.name, payload=point.payload,
                                        points=models.FilterSelector(filter=still_without))
            self._write_words([point.id], {point.id: point.words}, still_without)

    def _write_words(self, point_ids: Sequence[str], words: dict[str, Words], condition: models.Filter) -> None:
        """A point deleted meanwhile is left alone (the server refuses vectors for a missing point)."""
        if not self._words:
            return
        with self._retired_when_missing():
            present = [str(p.id) for p in self.client.retrieve(self.name, list(point_ids), with_payload=False)]
            if present:
                self.client.update_vectors(self.name, points=[
                    models.PointVectors(id=p, vector={WORDS_VECTOR: _sparse(words[p])}) for p in present],
                    update_filter=condition)

    def neighbours(self, vectors: Sequence[np.ndarray], min_score: float, limit: int,
                   conditions: Sequence[Condition]) -> list[list[IndexHit]]:
        selected = server_filter(conditions)
        requests = []
        targets = [unit_floats(vector) for vector in vectors]
        for target in targets:  # each against the main images and against every image of the products of several
            requests += [models.QueryRequest(query=target, using=self._vector, limit=limit,
                                             score_threshold=min_score, filter=selected,
                                             with_payload=NAMED_IMAGES_PAYLOAD),
                         models.QueryRequest(query=[target], using=IMAGES_VECTOR, limit=limit,
                                             score_threshold=min_score, filter=selected,
                                             with_payload=NAMED_IMAGES_PAYLOAD, with_vector=[IMAGES_VECTOR])]
        with self._retired_when_missing():
            found = [response.points for response in self.client.query_batch_points(self.name, requests=requests)]
        return [by_closest_image([point_hit(p, p.score) for p in found[2 * i]],
                                 [images_hit(p, target, None) for p in found[2 * i + 1]], limit)
                for i, target in enumerate(targets)]

    def retrieve(self, point_ids: Sequence[str], conditions: Sequence[Condition]) -> list[IndexPoint]:
        with self._retired_when_missing():
            found, _ = self.client.scroll(self.name, limit=len(point_ids),
                                          scroll_filter=server_filter(conditions, point_ids), with_payload=True,
                                          with_vectors=[self._vector, IMAGES_VECTOR])
        return [self._point(record) for record in found]

    def scroll(self, limit: int, offset: object | None, conditions: Sequence[Condition],
               full_payload: bool) -> ScrollPage:
        with self._retired_when_missing():
            found, after = self.client.scroll(self.name, limit=limit,
                                              offset=cast("models.ExtendedPointId | None", offset),
                                              scroll_filter=server_filter(conditions),
                                              with_payload=True if full_payload else NAMED_IMAGES_PAYLOAD,
                                              with_vectors=[self._vector, IMAGES_VECTOR])
        return ScrollPage([self._point(record) for record in found], after)

    def count(self, conditions: Sequence[Condition]) -> int:
        with self._retired_when_missing():
            return self.client.count(self.name, count_filter=server_filter(conditions), exact=True).count

    @contextmanager
    def _retired_when_missing(self) -> Iterator[None]:
        try:
            yield
        except Exception as error:
            if not _collection_missing(error):
                raise
            self._on_missing(self.name)
            raise StoreRetired(f"collection {self.name} was deleted") from error

    def _only(self, scope: Sequence[Condition], point_ids: Sequence[str] | None = None) -> models.Filter:
        selected = server_filter(scope, point_ids)
        assert selected is not None, "a write by filter names its points or its scope"
        return selected

    def _point(self, record: models.Record) -> IndexPoint:
        payload = point_payload(record)
        return IndexPoint(payload["product_id"], point_vector(record, self._vector), payload, stored_images(record))


class QdrantServerIndex(TieredIndex):
    def __init__(self, client: QdrantClient, space: VectorSpace, collection_prefix: str = "trooply_",
                 layout: ClusterLayout = ClusterLayout(), promotion_threshold: int = 20000,
                 settle_seconds: float = 2.0, kept: Callable[[], bool] = lambda: True) -> None:
        """`settle_seconds`: how long a promotion waits for other processes' calls in flight, before copying and
        before deleting the tenant from the shared collection. `kept`: whether this space's vectors are still
        kept; a shared collection another process deleted is created again only then (a write that outlived a
        model's cleanup must not bring its collection back)."""
        super().__init__(space, promotion_threshold, settle_seconds)
        self._kept = kept
        self._shared_lost = False
        self.client = client
        self.layout = layout
        self._prefix = collection_prefix
        self._shared: CollectionStore | None = None
        self._checked: dict[str, str] = {}  # collections that matched the space: their vector name
        self._wordless: set[str] = set()  # older collections the server could not give a words vector

    @classmethod
    def from_settings(cls, settings: Settings, space: VectorSpace,
                      kept: Callable[[], bool] = lambda: True) -> "QdrantServerIndex":
        layout = ClusterLayout(settings.qdrant.shard_number, settings.qdrant.replication_factor,
                               settings.qdrant.write_consistency_factor)
        return cls(QdrantClient(url=settings.qdrant.url, api_key=settings.qdrant.api_key), space, layout=layout,
                   promotion_threshold=settings.index.promotion_threshold, kept=kept)

    def ping(self) -> None:
        self.client.get_collections()

    def close(self) -> None:
        self._stop_promotions()
        self.client.close()

    def destroy(self) -> None:
        self._stop_promotions()  # first: a promotion under way would create its target again
        tenants = self.tenant_name("")  # a space name may hold dots: match whole parts, not `<space>.`
        for alias in self.client.get_aliases().aliases:
            if alias.alias_name.startswith(tenants):  # a promoted tenant's, onto `….data` or a collection before tiers
                self.client.update_collection_aliases(change_aliases_operations=[models.DeleteAliasOperation(
                    delete_alias=models.DeleteAlias(alias_name=alias.alias_name))])
                self.client.delete_collection(alias.collection_name)
        for collection in self.client.get_collections().collections:
            if collection.name == self.shared_name() or collection.name.startswith(tenants):  # promotions under way
                self.client.delete_collection(collection.name)
        self._shared, self._checked = None, {}
        self.client.close()
        log.info("deleted the collections of %s", self.space.name)

    # Names

    @property
    def collection_prefix(self) -> str:
        return self._prefix

    def shared_name(self, space: VectorSpace | None = None) -> str:
        return f"{self._prefix}{(space or self.space).name}.shared"

    def tenant_name(self, tenant_id: str, space: VectorSpace | None = None) -> str:
        """The alias a promoted tenant's collection is reached by."""
        return f"{self._prefix}{(space or self.space).name}.tenant.{tenant_id}"

    def _target_name(self, tenant_id: str) -> str:
        return f"{self.tenant_name(tenant_id)}.data"

    # The stores

    def _shared_store(self) -> CollectionStore:
        if self._shared is None:  # checked once per process, and again if another process deleted it
            if self._shared_lost and not self._kept():
                raise ServiceUnavailable(f"the vectors of {self.space.name} were dropped", code="model_retired")
            name = self.shared_name()
            self._create(name, shared=True)
            self._shared = self._store(name, self._check(name, "the shared index"))
        return self._shared

    def _dedicated_store(self, tenant_id: str) -> CollectionStore | None:
        # Asked on every call: another process may have promoted or dropped the tenant.
        name = self.tenant_name(tenant_id)
        if not self.client.collection_exists(name):
            return None
        return self._store(name, self._check(name, f"index of tenant {tenant_id}", tenant_id))

    def _promotion_target(self, tenant_id: str) -> CollectionStore | None:
        name = self._target_name(tenant_id)
        if not self.client.collection_exists(name):
            return None
        return CollectionStore(self.client, name, self.space.name, self._forget)

    def _begin_promotion(self, tenant_id: str) -> CollectionStore:
        name = self._target_name(tenant_id)
        if self.client.collection_exists(name):  # a crashed promotion's, or a racing one's: start over
            self.client.delete_collection(name)
        self._create(name, shared=False)
        return CollectionStore(self.client, name, self.space.name, self._forget)

    def _finish_promotion(self, tenant_id: str) -> None:
        self.client.update_collection_aliases(change_aliases_operations=[models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=self._target_name(tenant_id),
                                            alias_name=self.tenant_name(tenant_id)))])

    def _abandon_promotion(self, tenant_id: str) -> None:
        target = self._target_name(tenant_id)
        if not self.client.collection_exists(self.tenant_name(tenant_id)) and self.client.collection_exists(target):
            self.client.delete_collection(target)

    def _drop_dedicated(self, tenant_id: str) -> None:
        alias = self.tenant_name(tenant_id)
        found = [a.collection_name for a in self.client.get_aliases().aliases if a.alias_name == alias]
        for collection in found:
            self.client.update_collection_aliases(change_aliases_operations=[models.DeleteAliasOperation(
                delete_alias=models.DeleteAlias(alias_name=alias))])
            self.client.delete_collection(collection)
        self._checked.pop(alias, None)

    def _dedicated_tenants(self) -> list[str]:
        tenants = self.tenant_name("")
        return sorted(alias.alias_name.removeprefix(tenants) for alias in self.client.get_aliases().aliases
                      if alias.alias_name.startswith(tenants))

    def _forget(self, name: str) -> None:
        """A collection another process deleted: looked up (the shared one created) again on next use."""
        if self._shared is not None and self._shared.name == name:
            self._shared, self._shared_lost = None, True
        self._checked.pop(name, None)

    def _create(self, name: str, shared: bool) -> None:
        if not self.client.collection_exists(name):
            try:
                self.client.create_collection(name, vectors_config={
                    self.space.name: models.VectorParams(size=self.space.size, distance=models.Distance.COSINE),
                    IMAGES_VECTOR: _images_params(self.space)},
                    sparse_vectors_config={WORDS_VECTOR: _WORDS_CONFIG},
                    shard_number=self.layout.shard_number, replication_factor=self.layout.replication_factor,
                    write_consistency_factor=self.layout.write_consistency_factor)
            except Exception:
                if not self.client.collection_exists(name):  # else another process created it first: use it
                    raise
        indexes: dict[str, models.PayloadSchemaType | models.KeywordIndexParams] = {
            **PAYLOAD_INDEXES, IDENTIFIERS_KEY: models.PayloadSchemaType.KEYWORD,
            **({TENANT_KEY: TENANT_INDEX} if shared else {})}
        for key, schema in indexes.items():
            self.client.create_payload_index(name, key, schema)  # idempotent

    def _check(self, name: str, where: str, tenant_id: str | None = None) -> str:
        """The collection's vector name, once it is known to match the space."""
        if name not in self._checked:
            stored = _stored_space(self.client, name, self.space.name)
            self.space.check_matches(stored, where)
            self._give_words(name, stored.name, where, tenant_id)
            self._give_images(name)
            self._checked[name] = stored.name
        return self._checked[name]

    def _give_images(self, name: str) -> None:
        """A collection built before several images gets their multivector (its products have one image each)."""
        if IMAGES_VECTOR in cast(dict[str, Any], self.client.get_collection(name).config.params.vectors):
            return
        try:
            params = _images_params(self.space)
            self.client.create_vector_name(name, IMAGES_VECTOR, models.DenseVectorNameConfig(
                dense=models.DenseVectorConfig(size=params.size, distance=params.distance,
                                               multivector_config=params.multivector_config)))
        except Exception:
            if IMAGES_VECTOR not in cast(dict[str, Any], self.client.get_collection(name).config.params.vectors):
                raise  # else another process added it first

    def _store(self, name: str, vector_name: str) -> CollectionStore:
        return CollectionStore(self.client, name, vector_name, self._forget, words=name not in self._wordless)

    def _give_words(self, name: str, vector_name: str, where: str, tenant_id: str | None) -> None:
        """A collection built before the lexical leg gets its words vector; points without words get theirs in
        the background (also those a process stopped midway left). A server that cannot add a vector to a
        collection (older than create-vector-name) leaves it pictures only in this process, which says so."""
        if WORDS_VECTOR not in (self.client.get_collection(name).config.params.sparse_vectors or {}):
            try:
                self.client.create_vector_name(name, WORDS_VECTOR, models.SparseVectorNameConfig(
                    sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF)))
            except Exception:
                if WORDS_VECTOR not in (self.client.get_collection(name).config.params.sparse_vectors or {}):
                    log.warning("the Qdrant server could not add the words vector to %s (%s): its searches are "
                                "pictures only until a restart on a server that can (Qdrant 1.18 or later)", where,
                                name, exc_info=True)
                    self._wordless.add(name)
                    return
            self.client.create_payload_index(name, IDENTIFIERS_KEY, models.PayloadSchemaType.KEYWORD)
        if self.client.count(name, count_filter=_WITHOUT_WORDS, exact=False).count:
            self._fill_words_later(CollectionStore(self.client, name, vector_name, self._forget), where, tenant_id)


_WITHOUT_WORDS = models.Filter(must_not=[models.HasVectorCondition(has_vector=WORDS_VECTOR)])


def _images_params(space: VectorSpace) -> models.VectorParams:
    maxsim = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
    return models.VectorParams(size=space.size, distance=models.Distance.COSINE, multivector_config=maxsim)


def _sparse(words: Words) -> models.SparseVector:
    return models.SparseVector(indices=list(words.indices), values=list(words.values))


def _collection_missing(error: Exception) -> bool:
    """Whether a call failed because its collection does not exist (a server's 404, local mode's ValueError);
    missing points never fail a call this index makes."""
    if isinstance(error, UnexpectedResponse):
        return error.status_code == 404
    return isinstance(error, ValueError) and str(error).startswith("Collection ") and str(error).endswith(" not found")


def _stored_space(client: QdrantClient, name: str, expected: str) -> VectorSpace:
    vectors = client.get_collection(name).config.params.vectors
    # Dense vectors, one or named: every collection this index creates has them.
    named = vectors if isinstance(vectors, dict) else {"": cast(models.VectorParams, vectors)}
    stored = expected if expected in named else next(n for n in named if n != IMAGES_VECTOR)
    return VectorSpace(stored, named[stored].size)
