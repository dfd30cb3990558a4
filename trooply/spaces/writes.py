"""Ingest's write to every live space: each kept model encodes a batch's images and its index stores them.

The active space's failure fails the products. Another space's (a migration's target, or the model kept for a
rollback) never does: those products are that space's misses, handed to the migration, which tries them again.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from trooply.batching import INGEST
from trooply.errors import TrooplyError
from trooply.index.base import IndexPoint, VectorIndex
from trooply.spaces.live import LiveSpaces
from trooply.spaces.state import ModelSpec
from trooply.vectors import VectorSpace
from trooply.vision.encoder import ClipEncoder

log = logging.getLogger(__name__)

# Per product: the main image's vector and, for a product of several, every image's (main first).
ProductVectors = dict[str, tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class SpaceTarget:
    """A model products are encoded with, and the index its vectors go to: both resolved when used, so a
    migration's model that cannot load (or whose index cannot open) fails only its own encode."""

    space: VectorSpace
    encoder: Callable[[], ClipEncoder]
    index: Callable[[], VectorIndex]


class MissedWrites(Protocol):
    """Where the other spaces' misses go (model_migration/service.py:ModelMigrationService implements it)."""

    def record_failures(self, tenant_id: str, errors: dict[str, tuple[str, str]]) -> None:
        """The other model could not encode or store these products (id: (code, message)): tried again."""
        ...

    def clear_failures(self, session: Session, tenant_id: str, product_ids: list[str]) -> bool:
        """Every other model stored these products, in the transaction that holds their rows: a failure recorded
        for one of them by an earlier store is void. True when one was cleared."""
        ...

    def cut_over_when_ready(self) -> bool:
        """After that transaction: the last failure cleared may let a migration's automatic cutover go."""
        ...


class SpaceWriter:
    """Chooses, per batch, the spaces ingest writes to: the active one first, then the one a migration keeps."""

    def __init__(self, spaces: LiveSpaces, encoder_for: Callable[[ModelSpec], ClipEncoder],
                 missed: MissedWrites) -> None:
        self.spaces = spaces
        self.missed = missed
        self._encoder_for = encoder_for  # the second model loads on the first product that needs it

    def batch(self) -> "SpaceBatch":
        """The spaces of one batch, chosen once (reading the model state may raise: the batch comes back later)."""
        return SpaceBatch(self, self.targets())

    def targets(self) -> list[SpaceTarget]:
        return [self._target(spec) for spec in self.spaces.kept_models()]

    def _target(self, spec: ModelSpec) -> SpaceTarget:
        return SpaceTarget(spec.space, lambda: self._encoder_for(spec), lambda: self.spaces.for_writes(spec.space))


class SpaceBatch:
    """One batch's write: `encode` (before the transaction), `store` (in it), `settle` (after it commits)."""

    def __init__(self, writer: SpaceWriter, targets: list[SpaceTarget]) -> None:
        self._writer = writer
        self.active, *self._others = targets
        self._other_vectors: list[tuple[SpaceTarget, ProductVectors]] = []
        self.misses: dict[str, TrooplyError] = {}
        self._cleared = False

    @property
    def only_active(self) -> bool:
        """No migration runs: an unchanged image may keep the vector the active space holds."""
        return not self._others

    def encode(self, images: list[Image.Image], owners: list[str]) -> tuple[ClipEncoder, np.ndarray]:
        """Every image in the active space (returned with its encoder; an error fails the batch) and in every
        other one (kept for `store`; an error is that space's miss). `owners[i]` is image i's product, every
        main image before the extra ones."""
        encoder = self.active.encoder()
        # Ingest priority: a storefront query never waits behind these in the runtime's batcher.
        encoded = encoder.encode_images(images, priority=INGEST)
        for target in self._others:
            self._encode_other(target, images, owners)
        return encoder, encoded

    def store(self, session: Session, tenant_id: str, points: list[IndexPoint]) -> dict[str, TrooplyError]:
        """The points in every live space, in the transaction that holds the products' rows, under their locks.
        The active space's error raises; the products another space missed are returned (`settle` hands
        them to the migration)."""
        if points:
            self.active.index().upsert(tenant_id, points)
        payloads = {point.product_id: point.payload for point in points}
        for target, vectors in self._other_vectors:
            self.misses |= _store_other(tenant_id, target, vectors, payloads)
        self.misses |= self._started_meanwhile(list(payloads))
        # Every product the other spaces did not store has a miss by now (encode, store or a late start).
        stored = [product_id for product_id in payloads if product_id not in self.misses]
        # Under the products' locks: a failure a later store records for one of them is never cleared here.
        self._cleared = bool(self._others and stored) and self._writer.missed.clear_failures(
            session, tenant_id, stored)
        return self.misses

    def settle(self, tenant_id: str) -> None:
        """After `store`'s transaction: the misses go to the migration; a failure cleared may let it cut over."""
        if self.misses:
            self._writer.missed.record_failures(
                tenant_id, {pid: (error.code, error.message) for pid, error in self.misses.items()})
        if self._cleared:
            try:
                self._writer.missed.cut_over_when_ready()
            except Exception:  # the products are stored: the migration's periodic sweep checks the cutover too
                log.exception("checking the model cutover after clearing failures failed")

    def _encode_other(self, target: SpaceTarget, images: list[Image.Image], owners: list[str]) -> None:
        try:
            vectors = target.encoder().encode_images(images, priority=INGEST)
        except Exception as error:
            products = list(dict.fromkeys(owners))
            log.exception("the second model could not encode %d products", len(products))
            self.misses |= {pid: _second_model_error(error) for pid in products}
            return
        rows: dict[str, list[np.ndarray]] = {}
        for owner, vector in zip(owners, vectors, strict=True):
            rows.setdefault(owner, []).append(vector)
        self._other_vectors.append((target, {pid: (found[0], np.stack(found) if len(found) > 1 else None)
                                             for pid, found in rows.items()}))

    def _started_meanwhile(self, stored: list[str]) -> dict[str, TrooplyError]:
        """A migration that began while the batch was encoding: its model has no vector for these products,
        and its re-encode may already have passed them (not indexed yet), so the migration tries them again."""
        known = {target.space for target in self._others}
        missed = [spec for spec in self._writer.spaces.kept_models()[1:] if spec.space not in known]
        if not missed or not stored:
            return {}
        error = TrooplyError("the model migration began while this product was being encoded",
                             code="second_model_failed", transient=True)
        return {pid: error for pid in stored}


def _store_other(tenant_id: str, target: SpaceTarget, vectors: ProductVectors,
                 payloads: dict[str, dict]) -> dict[str, TrooplyError]:
    points = [IndexPoint(pid, main, payloads[pid], images) for pid, (main, images) in vectors.items()
              if pid in payloads]
    try:
        target.index().upsert(tenant_id, points)
    except Exception as error:
        log.exception("the second model's index could not store %d products", len(points))
        return {point.product_id: _second_model_error(error) for point in points}
    return {}


def _second_model_error(error: Exception) -> TrooplyError:
    message = error.message if isinstance(error, TrooplyError) else type(error).__name__
    return TrooplyError(f"the migration's second model failed: {message}", code="second_model_failed", transient=True)
