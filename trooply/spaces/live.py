"""The vector index the services see while two models coexist: one index per vector space, behind the
VectorIndex contract. Reads go to the active model's index; writes without a vector (payloads, deletes, drops)
go to every model being kept current; vectors go to the index of their own space."""

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from trooply.errors import ServiceUnavailable
from trooply.index.base import (
    Condition,
    HybridHits,
    HybridQuery,
    IndexHit,
    IndexPoint,
    ScrollPage,
    SpaceIndex,
    TierStatus,
    VectorIndex,
)
from trooply.spaces.state import ModelSnapshot, ModelSpec
from trooply.vectors import VectorSpace


class LiveSpaces:
    def __init__(self, state: Callable[[], ModelSnapshot], open_index: Callable[[VectorSpace], SpaceIndex]) -> None:
        self._state = state
        self._open_index = open_index
        self._opened: dict[VectorSpace, SpaceIndex] = {}
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def serving(cls, index: SpaceIndex) -> "LiveSpaces":
        """One space, always the active one: a tool or a test with a single index."""
        only = ModelSnapshot(ModelSpec("", "", index.space))
        return cls(lambda: only, lambda _space: index)

    def index_of(self, space: VectorSpace) -> VectorIndex:
        """The index of one model's vectors, opened on first use."""
        with self._lock:
            if self._closed:
                raise ServiceUnavailable("the index is closed", code="index_closed")
            if space not in self._opened:
                self._opened[space] = self._open_index(space)
            return self._opened[space]

    def for_writes(self, space: VectorSpace) -> VectorIndex:
        """The index of a model whose vectors are kept (active, migrated to, or kept for rollback): a write that
        outlived an abort or a cleanup is refused (503 model_retired) instead of bringing its vectors back."""
        if space not in self.kept():
            raise ServiceUnavailable(f"the vectors of {space.name} are no longer kept", code="model_retired")
        return self.index_of(space)

    def kept(self) -> set[VectorSpace]:
        """The spaces whose vectors are kept, as this process last read the model state."""
        return {spec.space for spec in self._state().written}

    def kept_models(self) -> list[ModelSpec]:
        """The models whose vectors are kept, the active one first."""
        return self._state().written

    def retire(self, space: VectorSpace) -> None:
        """Deletes a cleaned-up model's index, every tenant's vectors at once (those of tenants purged since too)."""
        with self._lock:
            index = self._opened.pop(space, None)
        (index or self._open_index(space)).destroy()

    def fill_words(self) -> None:
        """Every kept model's index gives the points written before the lexical leg their words, now."""
        for spec in self._state().written:
            self.index_of(spec.space)
            with self._lock:
                index = self._opened[spec.space]
            index.fill_all_words()

    def open_active(self) -> None:
        """Opens the active model's index now (embedded: takes the data-directory lock, so a second `serve`
        refuses at start rather than at its first request)."""
        self.index_of(self.space)

    @property
    def space(self) -> VectorSpace:
        return self._state().active.space

    @property
    def active(self) -> VectorIndex:
        return self.index_of(self.space)

    def _written(self) -> list[VectorIndex]:
        return [self.index_of(spec.space) for spec in self._state().written]

    def _for_vector(self, vector: np.ndarray) -> VectorIndex:
        """The active index, unless the vector is plainly the other model's: a query encoded a moment before
        this process saw a cutover is answered from the model that encoded it, never refused for its size."""
        state = self._state()
        second = state.second
        if len(vector) != state.active.space.size and second is not None and len(vector) == second.space.size:
            return self.index_of(second.space)
        return self.index_of(state.active.space)

    def upsert(self, tenant_id: str, points: Sequence[IndexPoint]) -> None:
        if points:
            self._for_vector(points[0].vector).upsert(tenant_id, points)

    def set_payload(self, tenant_id: str, product_id: str, payload: dict[str, Any], replace: bool = False) -> None:
        for index in self._written():
            index.set_payload(tenant_id, product_id, payload, replace)

    def delete(self, tenant_id: str, product_ids: Sequence[str]) -> None:
        for index in self._written():
            index.delete(tenant_id, product_ids)

    def query(self, tenant_id: str, vector: np.ndarray, limit: int,
              conditions: Sequence[Condition] = (), with_vectors: bool = False) -> list[IndexHit]:
        return self._for_vector(vector).query(tenant_id, vector, limit, conditions, with_vectors)

    def hybrid_query(self, tenant_id: str, query: HybridQuery) -> HybridHits:
        return self._for_vector(query.vector).hybrid_query(tenant_id, query)

    def retokenise(self, tenant_id: str) -> int:
        return sum(index.retokenise(tenant_id) for index in self._written())

    def retrieve(self, tenant_id: str, product_ids: Sequence[str]) -> list[IndexPoint]:
        return self.active.retrieve(tenant_id, product_ids)

    def scroll(self, tenant_id: str, limit: int, offset: object | None = None) -> ScrollPage:
        return self.active.scroll(tenant_id, limit, offset)

    def neighbours(self, tenant_id: str, points: Sequence[IndexPoint], min_score: float,
                   limit: int) -> list[list[IndexHit]]:
        if not points:
            return []
        return self._for_vector(points[0].vector).neighbours(tenant_id, points, min_score, limit)

    def count(self, tenant_id: str) -> int:
        return self.active.count(tenant_id)

    def drop_tenant(self, tenant_id: str) -> None:
        for index in self._written():
            index.drop_tenant(tenant_id)

    def tier(self, tenant_id: str) -> TierStatus:
        return self.active.tier(tenant_id)

    def promote(self, tenant_id: str) -> Future[None]:
        """Promotes the tenant in every model's index; the future is the active one's."""
        active, *others = self._written()
        for index in others:
            index.promote(tenant_id)
        return active.promote(tenant_id)

    def ping(self) -> None:
        self.active.ping()

    def close(self) -> None:
        with self._lock:
            opened, self._opened, self._closed = list(self._opened.values()), {}, True
        for index in opened:
            index.close()
