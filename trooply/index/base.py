"""The vector index contract: one interface, implemented on Qdrant Edge and on the Qdrant server.

Every call takes the tenant first. Small tenants share one store (an Edge shard or a server
collection) partitioned by a tenant payload key; a tenant whose catalogue passes a threshold is
promoted to a store of its own (see `tiers`). Either way no call can reach another tenant's vectors.
"""

import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

import numpy as np

from trooply.index.words import Words
from trooply.vectors import VectorSpace

# Point ids are derived from the merchant's product id, so re-upserting a product replaces it.
_POINT_NAMESPACE = uuid.UUID("6f1c3f4e-5d0b-4b8a-9a51-3c1f2d7e9b10")


def point_id(product_id: str) -> str:
    """The point id in a tenant's own store (the layout every store had before tiers)."""
    return str(uuid.uuid5(_POINT_NAMESPACE, product_id))


def shared_point_id(tenant_id: str, product_id: str) -> str:
    """The point id in the shared store: two tenants may both have a product "p1"."""
    return str(uuid.uuid5(uuid.uuid5(_POINT_NAMESPACE, tenant_id), product_id))


@dataclass
class IndexPoint:
    product_id: str
    vector: np.ndarray  # the main image's
    payload: dict[str, Any]
    images: np.ndarray | None = None  # every image's vector, main first, for a product of several (see `images`)


@dataclass
class IndexHit:
    product_id: str
    score: float  # cosine similarity in [-1, 1]
    payload: dict[str, Any]
    vector: np.ndarray | None = None
    words_score: float | None = None  # found by the lexical leg: its BM25 score (IDF over the tenant's points)
    words_coverage: float | None = None  # and the share of the query's tokens it holds
    image_position: int = 0  # which of the product's images the score is of (0: the main image)


@dataclass
class ScrollPage:
    """One page of a tenant's points in storage order; `next_offset` (engine-specific) continues it."""

    points: list[IndexPoint]
    next_offset: object | None


@dataclass(frozen=True)
class Condition:
    """One pre-filter condition on a payload key (already normalised, see `filters`)."""

    key: str
    kind: Literal["eq", "any", "except", "range"]
    value: Any = None
    range: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class HybridQuery:
    """Both legs of a search under one pre-filter: the nearest pictures, the best BM25 matches of `words` (None:
    no lexical leg) and the products whose identifier is exactly `identifier`."""

    vector: np.ndarray
    limit: int
    words: Words | None = None
    identifier: str | None = None
    conditions: Sequence[Condition] = ()
    with_vectors: bool = False
    words_limit: int | None = None  # the lexical leg's hits at most (None: `limit`)
    words_min_score: float | None = None  # the lexical leg leaves out hits scoring less (None: none left out)

    @property
    def words_wanted(self) -> int:
        return self.limit if self.words_limit is None else self.words_limit


@dataclass
class HybridHits:
    """Each leg's hits, best first; every hit's `score` is its cosine to the query vector."""

    pictures: list[IndexHit]
    words: list[IndexHit]
    exact: list[IndexHit]


Tier = Literal["shared", "dedicated"]


@dataclass(frozen=True)
class TierStatus:
    """Where a tenant's vectors live, and whether a move to a store of its own is running."""

    tier: Tier
    promoting: bool = False


class VectorIndex(Protocol):
    @property
    def space(self) -> VectorSpace: ...

    def upsert(self, tenant_id: str, points: Sequence[IndexPoint]) -> None: ...

    def set_payload(self, tenant_id: str, product_id: str, payload: dict[str, Any], replace: bool = False) -> None:
        """Merge top-level keys into the stored payload, or with `replace` swap the whole payload."""

    def delete(self, tenant_id: str, product_ids: Sequence[str]) -> None: ...

    def query(self, tenant_id: str, vector: np.ndarray, limit: int,
              conditions: Sequence[Condition] = (), with_vectors: bool = False) -> list[IndexHit]: ...

    def hybrid_query(self, tenant_id: str, query: HybridQuery) -> HybridHits:
        """Every leg in one batched call; the lexical leg's IDF is computed over the tenant's own points."""

    def retokenise(self, tenant_id: str) -> int:
        """Re-tokenises the tenant's words in its language now (resumable); how many points it rewrote."""

    def retrieve(self, tenant_id: str, product_ids: Sequence[str]) -> list[IndexPoint]:
        """The stored vectors and payloads of these products, in no particular order; products not in the
        index are left out."""

    def scroll(self, tenant_id: str, limit: int, offset: object | None = None) -> ScrollPage:
        """Every stored vector once, a page at a time (payloads hold only the product id): pass each page's
        `next_offset` until it is None."""

    def neighbours(self, tenant_id: str, points: Sequence[IndexPoint], min_score: float,
                   limit: int) -> list[list[IndexHit]]:
        """For each point, the other points at cosine >= `min_score`, closest first, at most `limit`, as one
        batched call (payloads hold only the product id)."""

    def count(self, tenant_id: str) -> int: ...

    def drop_tenant(self, tenant_id: str) -> None: ...

    def tier(self, tenant_id: str) -> TierStatus: ...

    def promote(self, tenant_id: str) -> Future[None]:
        """Moves a shared tenant to a store of its own in the background (searches answer throughout, no
        write is lost); the future is done at once for a dedicated tenant."""

    def ping(self) -> None: ...

    def close(self) -> None: ...


class SpaceIndex(VectorIndex, Protocol):
    """An engine's index of one vector space: it owns that space's storage."""

    def fill_all_words(self) -> None:
        """Gives every point written before the lexical leg its words, and returns when they all have them."""

    def destroy(self) -> None:
        """Closes the index and deletes every store of its space (shared, dedicated, promotions under way), so
        that no tenant's vectors survive, not even a tenant's no longer known elsewhere."""


class StoredPoint(Protocol):
    """A point as either engine returns it (Qdrant Edge's and qdrant-client's records share this shape)."""

    @property
    def payload(self) -> dict[str, Any] | None: ...

    @property
    def vector(self) -> Any: ...


def as_floats(vector: np.ndarray) -> list[float]:
    return np.asarray(vector, dtype=np.float32).tolist()


def point_payload(point: StoredPoint) -> dict[str, Any]:
    return cast(dict[str, Any], point.payload)  # every call here asks for payloads: never None


def point_vector(point: StoredPoint, name: str) -> np.ndarray:
    return np.asarray(cast(dict[str, list[float]], point.vector)[name], dtype=np.float32)  # asked for: named vectors


def point_hit(point: StoredPoint, score: float, vector_name: str | None = None) -> IndexHit:
    """`vector_name`: with the stored vector of that name (asked for with the query)."""
    vector = None if vector_name is None else point_vector(point, vector_name)
    payload = point_payload(point)  # read once: each read of an engine's point converts the whole payload again
    return IndexHit(payload["product_id"], score, payload, vector)


class ScoredStoredPoint(StoredPoint, Protocol):
    @property
    def score(self) -> float: ...


def unit_floats(vector: np.ndarray) -> list[float]:
    """The query as the engines compare it with cosine (stored vectors are normalised when written), as the floats
    a request sends: the engines score the same with it as with the vector unnormalised."""
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm else vector).tolist()


