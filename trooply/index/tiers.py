"""Tiered tenant storage, the same on both engines: small tenants share one store, big ones get their own.

A tenant starts in the shared store, where every point carries the tenant's id under `TENANT_KEY`
and every read and write is scoped by it (`TenantView`, the only place that condition is added).
When a write takes a shared tenant past the promotion threshold, or on demand, it is promoted in
the background:

1. begin: an empty target store is created; from then on every write of the tenant goes to the
   shared store and is mirrored into the target (the engine makes the target visible to writers:
   in-process on Edge, by its collection's existence on the server, so other processes mirror too);
2. copy: the tenant's points are copied page by page, each page under the tenant's write lock so
   that no write of this process falls between reading a page and writing it;
3. catch up: every write carries a version stamp (`VERSION_KEY`); the two stores are compared and
   points whose version differs are copied again (or deleted) until they agree, which catches the
   writes of other processes that raced the copy;
4. switch: the engine makes the target the tenant's store in one atomic step (a directory rename
   on Edge, a collection alias on the server), under the tenant's write lock;
5. after the settle delay again (reads of other processes that chose the shared store before the
   switch), the tenant's points are deleted from the shared store.

Searches answer from the shared store until the switch and from the dedicated one after it. A read of
this process that chose the shared store and ran across the switch is made again in the dedicated
one (`_switches`), so it never sees the shared store half emptied. A crash
before the switch leaves the tenant served from shared and the target is discarded by the next
promotion (or on open); a crash after it leaves stale points in shared that no read sees.
"""

import logging
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import numpy as np

from trooply.errors import ServiceUnavailable
from trooply.index.base import (
    Condition,
    HybridHits,
    HybridQuery,
    IndexHit,
    IndexPoint,
    ScrollPage,
    TierStatus,
    point_id,
    shared_point_id,
)
from trooply.index.words import (
    DEFAULT_LANGUAGE,
    IDENTIFIERS_KEY,
    LANGUAGE_KEY,
    Words,
    document_words,
    has_text,
    identifiers,
    words_language,
)
from trooply.vectors import VectorSpace

log = logging.getLogger(__name__)

TENANT_KEY = "_tenant"
VERSION_KEY = "_v"
_INTERNAL_KEYS = (TENANT_KEY, VERSION_KEY, IDENTIFIERS_KEY, LANGUAGE_KEY)
_COPY_PAGE = 256
_CATCH_UP_PASSES = 5
_LOOKUPS = 10  # a store retired this many times in a row during one call is a fault, not a race

R = TypeVar("R")


class StoreRetired(Exception):
    """The store was closed (tenant dropped or promoted, index closed) between lookup and use: look again."""


@dataclass
class StorePoint:
    id: str
    vector: np.ndarray
    payload: dict[str, Any]
    words: Words = Words()  # the lexical vector, derived from the payload (see `words`)
    images: np.ndarray | None = None  # every image's vector, for a product of several (see `images`)


class PointStore(Protocol):
    """One engine collection or shard. It knows nothing of tenants: `conditions` and `scope` scope it."""

    def upsert(self, points: Sequence[StorePoint]) -> None: ...

    def set_payload(self, point_id: str, payload: dict[str, Any], replace: bool,
                    scope: Sequence[Condition]) -> None: ...

    def delete(self, point_ids: Sequence[str], scope: Sequence[Condition]) -> None: ...

    def delete_matching(self, scope: Sequence[Condition]) -> None: ...

    def query(self, vector: np.ndarray, limit: int, conditions: Sequence[Condition],
              with_vectors: bool) -> list[IndexHit]: ...

    def hybrid(self, query: HybridQuery, conditions: Sequence[Condition],
               corpus: Sequence[Condition]) -> HybridHits:
        """`conditions` replace the query's own (scoped); `corpus`: the points the lexical leg's IDF counts."""

    def set_words(self, point_id: str, words: Words, scope: Sequence[Condition]) -> None:
        """Replaces a point's lexical vector, its picture vector untouched; a point not in the store is left alone."""

    def without_words(self, limit: int) -> list[StorePoint]:
        """Points written before the store had a lexical vector (their payloads; no vectors), at most `limit`."""

    def give_words(self, points: Sequence[StorePoint]) -> None:
        """Writes these points' words and identifiers, to those still without words only (a write since then
        brought its own); points deleted meanwhile are left alone."""

    def neighbours(self, vectors: Sequence[np.ndarray], min_score: float, limit: int,
                   conditions: Sequence[Condition]) -> list[list[IndexHit]]:
        """Payloads hold only the product id and which URL each image is (`index.images.NAMED_IMAGES_PAYLOAD`)."""

    def retrieve(self, point_ids: Sequence[str], conditions: Sequence[Condition]) -> list[IndexPoint]: ...

    def scroll(self, limit: int, offset: object | None, conditions: Sequence[Condition],
               full_payload: bool) -> ScrollPage:
        """Without `full_payload`, payloads hold only the product id and which URL each image is
        (`index.images.NAMED_IMAGES_PAYLOAD`)."""

    def count(self, conditions: Sequence[Condition]) -> int: ...


def new_version() -> str:
    return uuid.uuid4().hex


def public_payload(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key not in _INTERNAL_KEYS}


class TenantView:
    """One tenant's points in one store. In the shared store, every read and write is scoped to the tenant
    here and nowhere else: its condition, its payload key and its point ids. Its words are tokenised in the
    tenant's `language`."""

    def __init__(self, store: PointStore, tenant_id: str, shared: bool, language: str = DEFAULT_LANGUAGE) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.shared = shared
        self.language = language
        self._scope = [Condition(TENANT_KEY, "eq", tenant_id)] if shared else []

    def upsert(self, points: Sequence[IndexPoint], version: str) -> None:
        self.write_stamped([IndexPoint(p.product_id, p.vector, {**p.payload, "product_id": p.product_id,
                                                                VERSION_KEY: version}, p.images) for p in points])

    def write_stamped(self, points: Sequence[IndexPoint]) -> None:
        """Writes points read with their stamps from another store (a copy keeps their versions)."""
        self.store.upsert([self._stored(p) for p in points])

    def set_payload(self, product_id: str, payload: dict[str, Any], replace: bool, version: str) -> None:
        stamped = self._tagged({**payload, "product_id": product_id, VERSION_KEY: version})
        self.store.set_payload(self._id(product_id), stamped, replace, self._scope)
        if has_text(payload):  # new title, description, ...: the words follow, no picture is touched
            self.store.set_words(self._id(product_id), document_words(stamped, self.language), self._scope)

    def retokenise(self, points: Sequence[IndexPoint]) -> int:
        """Rewrites the words of these points (read with their stamps) that are not in the view's language, each
        only if unchanged since it was read (a write meanwhile brought its own words). A new version stamp, so that
        a promotion under way copies the point again. How many it rewrote."""
        stale = [p for p in points if words_language(p.payload) != self.language]
        for point in stale:
            read = point.payload.get(VERSION_KEY)
            unchanged = [*self._scope, *([Condition(VERSION_KEY, "eq", read)] if read else [])]
            self.store.set_words(self._id(point.product_id), document_words(point.payload, self.language), unchanged)
            self.store.set_payload(self._id(point.product_id), {LANGUAGE_KEY: self.language,
                                                                VERSION_KEY: new_version()}, False, unchanged)
        return len(stale)

    def delete(self, product_ids: Sequence[str]) -> None:
        if product_ids:
            self.store.delete([self._id(p) for p in product_ids], self._scope)

    def delete_all(self) -> None:
        """Only for a shared store: a dedicated one is dropped whole by its engine."""
        assert self.shared, "delete_all scopes by the tenant condition"
        self.store.delete_matching(self._scope)

    def query(self, vector: np.ndarray, limit: int, conditions: Sequence[Condition],
              with_vectors: bool) -> list[IndexHit]:
        hits = self.store.query(vector, limit, [*self._scope, *conditions], with_vectors)
        return [_public_hit(h) for h in hits]

    def hybrid(self, query: HybridQuery) -> HybridHits:
        found = self.store.hybrid(query, [*self._scope, *query.conditions], self._scope)
        return HybridHits(*([_public_hit(h) for h in hits] for hits in (found.pictures, found.words, found.exact)))

    def retrieve(self, product_ids: Sequence[str]) -> list[IndexPoint]:
        return [_public(p) for p in self.retrieve_stamped(product_ids)]

    def retrieve_stamped(self, product_ids: Sequence[str]) -> list[IndexPoint]:
        return self.store.retrieve([self._id(p) for p in product_ids], self._scope) if product_ids else []

    def scroll(self, limit: int, offset: object | None) -> ScrollPage:
        return self.store.scroll(limit, offset, self._scope, full_payload=False)

    def scroll_stamped(self, limit: int, offset: object | None) -> ScrollPage:
        return self.store.scroll(limit, offset, self._scope, full_payload=True)

    def neighbours(self, points: Sequence[IndexPoint], min_score: float, limit: int) -> list[list[IndexHit]]:
        if not points:
            return []
        # One more than asked: a point is its own nearest neighbour and is dropped.
        found = self.store.neighbours([p.vector for p in points], min_score, limit + 1, self._scope)
        return [[hit for hit in hits if hit.product_id != p.product_id][:limit]
                for p, hits in zip(points, found, strict=True)]

    def count(self) -> int:
        return self.store.count(self._scope)

    def versions(self) -> dict[str, str]:
        """Every product's version stamp (empty for a point written before stamps)."""
        found: dict[str, str] = {}
        offset: object | None = None
        while True:
            page = self.scroll_stamped(_COPY_PAGE, offset)
            found.update((p.product_id, str(p.payload.get(VERSION_KEY, ""))) for p in page.points)
            offset = page.next_offset
            if offset is None:
                return found

    def _id(self, product_id: str) -> str:
        return shared_point_id(self.tenant_id, product_id) if self.shared else point_id(product_id)

    def _tagged(self, payload: dict[str, Any]) -> dict[str, Any]:
        untagged = {key: value for key, value in payload.items()
                    if key not in (TENANT_KEY, IDENTIFIERS_KEY, LANGUAGE_KEY)}
        if has_text(payload):
            untagged[IDENTIFIERS_KEY] = identifiers(payload)
            untagged[LANGUAGE_KEY] = self.language
        return {**untagged, TENANT_KEY: self.tenant_id} if self.shared else untagged

    def _stored(self, point: IndexPoint) -> StorePoint:
        tagged = self._tagged(point.payload)
        return StorePoint(self._id(point.product_id), point.vector, tagged, document_words(tagged, self.language),
                          point.images)


def _store_unavailable(tenant_id: str) -> ServiceUnavailable:
    log.error("the store of tenant %s kept disappearing during one call", tenant_id)
    return ServiceUnavailable("the vector index is being changed: try again", code="index_unavailable")


def _public(point: IndexPoint) -> IndexPoint:
    return replace(point, payload=public_payload(point.payload))


def _public_hit(hit: IndexHit) -> IndexHit:
    hit.payload = public_payload(hit.payload)  # the engine's fresh hit: no copy needed
    return hit


def fill_words(store: PointStore, language_of: Callable[[dict[str, Any]], str] = lambda _payload: DEFAULT_LANGUAGE,
               page: int = _COPY_PAGE) -> int:
    """Gives every point written before the lexical leg its words (from its payload: no fetch, no encode) in its
    tenant's language, a page at a time; resumable, since a point once given its words (even none) is not found
    again. How many it filled."""
    filled, seen = 0, set[str]()
    while True:
        points = [p for p in store.without_words(page) if p.id not in seen]
        if not points:
            return filled
        languages = [language_of(p.payload) for p in points]
        store.give_words([StorePoint(p.id, p.vector, {IDENTIFIERS_KEY: identifiers(p.payload),
                                                      LANGUAGE_KEY: language},
                                     document_words(p.payload, language)) for p, language in zip(points, languages,
                                                                                                  strict=True)])
        seen.update(p.id for p in points)
        filled += len(points)


class TieredIndex(ABC):
    """The VectorIndex protocol over an engine's shared and dedicated stores, with promotion between them."""

    space: VectorSpace

    def __init__(self, space: VectorSpace, promotion_threshold: int, settle_seconds: float = 0.0) -> None:
        self.space = space
        # Each tenant's language (its `language` setting): its words are tokenised in it on every write.
        self.languages: Callable[[str], str] = lambda _tenant_id: DEFAULT_LANGUAGE
        self._promotion_threshold = promotion_threshold
        # How long a promotion waits after creating its target for other processes' writes in flight.
        self._settle_seconds = settle_seconds
        self._tenant_locks: dict[str, threading.Lock] = {}
        self._promotions: dict[str, Future[None]] = {}
        self._switches: dict[str, int] = {}  # promotions switched in this process, per tenant
        self._registry = threading.Lock()  # guards the three dicts above
        self._promoter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="promote")
        self._stopping = False
        self._word_fills: list[threading.Thread] = []

    @property
    def promotion_threshold(self) -> int:
        return self._promotion_threshold

    def shared_view(self, tenant_id: str) -> "TenantView":
        """The tenant's part of the shared store (the move from the layout before tiers copies into it)."""
        return TenantView(self._shared_store(), tenant_id, shared=True, language=self.languages(tenant_id))

    # The engine's part

    @abstractmethod
    def _shared_store(self) -> PointStore: ...

    @abstractmethod
    def _dedicated_store(self, tenant_id: str) -> PointStore | None: ...

    @abstractmethod
    def _promotion_target(self, tenant_id: str) -> PointStore | None:
        """The target of a promotion under way (here or, on the server, in another process)."""

    @abstractmethod
    def _begin_promotion(self, tenant_id: str) -> PointStore:
        """A new, empty target, replacing any left by a crash; writers mirror into it from now on."""

    @abstractmethod
    def _finish_promotion(self, tenant_id: str) -> None:
        """Makes the target the tenant's store in one atomic step."""

    @abstractmethod
    def _abandon_promotion(self, tenant_id: str) -> None: ...

    @abstractmethod
    def _drop_dedicated(self, tenant_id: str) -> None: ...

    @abstractmethod
    def _dedicated_tenants(self) -> list[str]:
        """The tenants with a store of their own."""

    # VectorIndex

    def upsert(self, tenant_id: str, points: Sequence[IndexPoint]) -> None:
        if not points:
            return
        version = new_version()
        if self._write(tenant_id, lambda view: view.upsert(points, version)):
            self._promote_when_due(tenant_id)

    def set_payload(self, tenant_id: str, product_id: str, payload: dict[str, Any], replace: bool = False) -> None:
        # Top-level keys are replaced, others kept (all dropped with `replace`); a product not (or no
        # longer) in the index is left alone.
        version = new_version()
        self._write(tenant_id, lambda view: view.set_payload(product_id, payload, replace, version))

    def delete(self, tenant_id: str, product_ids: Sequence[str]) -> None:
        self._write(tenant_id, lambda view: view.delete(product_ids))

    def query(self, tenant_id: str, vector: np.ndarray, limit: int,
              conditions: Sequence[Condition] = (), with_vectors: bool = False) -> list[IndexHit]:
        return self._read(tenant_id, lambda view: view.query(vector, limit, conditions, with_vectors))

    def hybrid_query(self, tenant_id: str, query: HybridQuery) -> HybridHits:
        return self._read(tenant_id, lambda view: view.hybrid(query))

    def retrieve(self, tenant_id: str, product_ids: Sequence[str]) -> list[IndexPoint]:
        return self._read(tenant_id, lambda view: view.retrieve(product_ids))

    def scroll(self, tenant_id: str, limit: int, offset: object | None = None) -> ScrollPage:
        # `offset` is a next_offset this index returned.
        return self._read(tenant_id, lambda view: view.scroll(limit, offset))

    def neighbours(self, tenant_id: str, points: Sequence[IndexPoint], min_score: float,
                   limit: int) -> list[list[IndexHit]]:
        return self._read(tenant_id, lambda view: view.neighbours(points, min_score, limit))

    def count(self, tenant_id: str) -> int:
        return self._read(tenant_id, lambda view: view.count())

    def drop_tenant(self, tenant_id: str) -> None:
        self._await_promotion(tenant_id)
        with self._tenant_lock(tenant_id):
            self._drop_dedicated(tenant_id)
            self._abandon_promotion(tenant_id)
            TenantView(self._shared_store(), tenant_id, shared=True).delete_all()

    def tier(self, tenant_id: str) -> TierStatus:
        if self._dedicated_store(tenant_id) is not None:
            return TierStatus("dedicated")
        with self._registry:
            running = tenant_id in self._promotions
        return TierStatus("shared", promoting=running or self._promotion_target(tenant_id) is not None)

    def promote(self, tenant_id: str) -> Future[None]:
        with self._registry:
            running = self._promotions.get(tenant_id)
            if running is not None:
                return running
            if self._stopping:
                raise ServiceUnavailable("the index is closed", code="index_closed")
            # Submitted under the registry lock: the promotion forgets itself (under it) only once listed.
            future = self._promotions[tenant_id] = self._promoter.submit(self._promote, tenant_id)
            return future

    # Routing

    def _view(self, tenant_id: str) -> TenantView:
        dedicated = self._dedicated_store(tenant_id)
        if dedicated is not None:
            return TenantView(dedicated, tenant_id, shared=False, language=self.languages(tenant_id))
        return TenantView(self._shared_store(), tenant_id, shared=True, language=self.languages(tenant_id))

    def _read(self, tenant_id: str, read: Callable[[TenantView], R]) -> R:
        for _ in range(_LOOKUPS):
            switches = self._switch_count(tenant_id)
            view = self._view(tenant_id)
            try:
                result = read(view)
            except StoreRetired:
                continue  # dropped or promoted meanwhile: look again
            if view.shared and self._switch_count(tenant_id) != switches:
                continue  # promoted meanwhile: its shared points may have been deleted under this read
            return result
        raise _store_unavailable(tenant_id)

    def _write(self, tenant_id: str, write: Callable[[TenantView], None]) -> bool:
        """Applies a write where the tenant lives (writes are idempotent: a retry repeats it whole); true when
        that is the shared store."""
        with self._tenant_lock(tenant_id):
            for _ in range(_LOOKUPS):
                try:
                    return self._write_once(tenant_id, write)
                except StoreRetired:
                    continue
        raise _store_unavailable(tenant_id)

    def _write_once(self, tenant_id: str, write: Callable[[TenantView], None]) -> bool:
        view = self._view(tenant_id)
        write(view)
        if not view.shared:
            return False
        target = self._promotion_target(tenant_id)
        if target is not None:
            # A promotion is copying this tenant.
            write(TenantView(target, tenant_id, shared=False, language=view.language))
        return True

    def _switch_count(self, tenant_id: str) -> int:
        with self._registry:
            return self._switches.get(tenant_id, 0)

    def _tenant_lock(self, tenant_id: str) -> threading.Lock:
        with self._registry:
            return self._tenant_locks.setdefault(tenant_id, threading.Lock())

    # The lexical leg of stores built before it

    def _fill_words_later(self, store: PointStore, where: str, tenant_id: str | None = None) -> None:
        """Gives the store's older points their words in the background; searches answer meanwhile (a point not
        filled yet is found by its picture only). `tenant_id`: a dedicated store's tenant (None: the shared one)."""
        fill = threading.Thread(target=self._fill_words, args=(store, where, tenant_id), daemon=True,
                                name="fill-words")
        with self._registry:
            self._word_fills = [*(t for t in self._word_fills if t.is_alive()), fill]
        fill.start()

    def _fill_words(self, store: PointStore, where: str, tenant_id: str | None) -> None:
        try:
            filled = fill_words(store, lambda payload: self.languages(tenant_id or str(payload.get(TENANT_KEY))))
        except StoreRetired:
            return  # dropped, promoted or closed: a store opened again is filled then
        except Exception:
            log.exception("giving the points of %s their words failed; the next start tries again", where)
            return
        if filled:
            log.info("gave %d points of %s their words", filled, where)

    def fill_all_words(self) -> None:
        """Opens every store, so that those built before the lexical leg are filled, and waits for the fills
        (`trooply migrate`)."""
        self._shared_store()
        for tenant_id in self._dedicated_tenants():
            self._dedicated_store(tenant_id)
        self.await_words()

    def await_words(self, timeout: float | None = None) -> None:
        """Waits for the word fills under way (tests, bench, `trooply migrate`)."""
        with self._registry:
            fills = list(self._word_fills)
        for fill in fills:
            fill.join(timeout)

    # A tenant's language

    def retokenise(self, tenant_id: str) -> int:
        """Re-tokenises the tenant's words in its language (its `language` setting changed), a page at a time, from
        the stored payloads: no fetch, no encode. Resumable: a point already in the language is left alone. Each page
        is read and rewritten under the tenant's write lock; a promotion meanwhile starts the pass over in the new
        store. How many points it rewrote."""
        rewritten, offset, store = 0, None, None
        for _ in range(_LOOKUPS):  # the loop restarts only when the tenant's store is retired under it
            try:
                while True:
                    self._check_running()
                    with self._tenant_lock(tenant_id):
                        view = self._view(tenant_id)
                        if view.store is not store:  # first page, or promoted meanwhile: from the start there
                            store, offset = view.store, None
                        page = view.scroll_stamped(_COPY_PAGE, offset)
                        rewritten += view.retokenise(page.points)
                    offset = page.next_offset
                    if offset is None:
                        return rewritten
            except StoreRetired:
                store = None
        raise _store_unavailable(tenant_id)

    # Promotion

    def _promote_when_due(self, tenant_id: str) -> None:
        with self._registry:
            if tenant_id in self._promotions:
                return
        if self._read(tenant_id, lambda view: view.shared and view.count() >= self._promotion_threshold):
            self.promote(tenant_id)

    def _promote(self, tenant_id: str) -> None:
        try:
            if self._dedicated_store(tenant_id) is None:
                self._move_to_own_store(tenant_id)
        except Exception:
            log.exception("promotion of tenant %s failed; it stays in the shared store", tenant_id)
            try:
                self._abandon_promotion(tenant_id)
            except Exception:  # a crashed promotion's target is also discarded by the next one
                log.exception("discarding the promotion target of tenant %s failed", tenant_id)
            raise
        finally:
            with self._registry:
                self._promotions.pop(tenant_id, None)

    def _move_to_own_store(self, tenant_id: str) -> None:
        with self._tenant_lock(tenant_id):
            target = TenantView(self._begin_promotion(tenant_id), tenant_id, shared=False,
                                language=self.languages(tenant_id))
        time.sleep(self._settle_seconds)
        source = TenantView(self._shared_store(), tenant_id, shared=True)
        self._copy(source, target)
        self._catch_up(source, target)
        with self._tenant_lock(tenant_id):
            self._finish_promotion(tenant_id)
            with self._registry:  # before any shared point is deleted: reads under way start over
                self._switches[tenant_id] = self._switches.get(tenant_id, 0) + 1
        time.sleep(self._settle_seconds)
        source.delete_all()
        log.info("tenant %s moved to its own store", tenant_id)

    def _copy(self, source: TenantView, target: TenantView) -> None:
        offset: object | None = None
        while True:
            self._check_running()
            # Read and written under the write lock: no write of this process lands in between and is
            # then overwritten by an older copy.
            with self._tenant_lock(source.tenant_id):
                page = source.scroll_stamped(_COPY_PAGE, offset)
                target.write_stamped(page.points)
            offset = page.next_offset
            if offset is None:
                return

    def _catch_up(self, source: TenantView, target: TenantView) -> None:
        """Copies again what changed in the shared store behind the copy's back (writes from other processes)."""
        for _ in range(_CATCH_UP_PASSES):
            self._check_running()
            wanted, held = source.versions(), target.versions()
            stale = [p for p in set(wanted) | set(held) if wanted.get(p) != held.get(p)]
            if not stale:
                return
            with self._tenant_lock(source.tenant_id):
                current = source.retrieve_stamped(stale)
                target.write_stamped(current)
                target.delete(sorted(set(stale) - {p.product_id for p in current}))
        log.warning("tenant %s was still being written after %d catch-up passes; those writes are mirrored into "
                    "its new store", source.tenant_id, _CATCH_UP_PASSES)

    def _check_running(self) -> None:
        if self._stopping:
            raise ServiceUnavailable("the index is closing", code="index_closed")

    def _await_promotion(self, tenant_id: str) -> None:
        with self._registry:
            running = self._promotions.get(tenant_id)
        if running is not None:
            with suppress(Exception):  # logged by the promotion; the tenant is still in the shared store
                running.result()

    def _stop_promotions(self) -> None:
        """A promotion under way stops at its next page; its tenant stays in the shared store."""
        with self._registry:
            self._stopping = True
        self._promoter.shutdown(wait=True, cancel_futures=True)
