"""The ingest task: safe fetch ▸ decode ▸ encode (batched) ▸ image signals ▸ upsert, per batch of products.

Idempotent: an item already final is skipped, and a product's point id derives from its id,
so a task delivered twice (Celery acks_late, restart recovery) converges to the same state.
"""

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from trooply.catalog.gallery import (
    ImageSlot,
    PreparedImage,
    PreparedProduct,
    gallery_rows,
    gallery_urls,
    image_errors,
    image_plan,
    stored_images,
)
from trooply.catalog.models import FAILED, INDEXED, PENDING, IngestItem, ProductRecord, product_images
from trooply.catalog.payload import index_payload
from trooply.catalog.repository import CatalogRepository
from trooply.config import Settings
from trooply.db import Database, utcnow
from trooply.errors import TrooplyError
from trooply.index.base import IndexPoint
from trooply.observability import INGEST_OUTCOMES
from trooply.ranking.families import FamilyClassifier
from trooply.spaces.writes import SpaceBatch, SpaceWriter
from trooply.tasks.names import INGEST_TASK
from trooply.tasks.queue import Dispatcher
from trooply.vision.catalog_image import fetch_catalogue_image
from trooply.vision.colour import aspect_ratio, colour_palette, palette_payload
from trooply.vision.decode import DecodedImage
from trooply.vision.encoder import ClipEncoder
from trooply.vision.fetch import ImageFetcher

log = logging.getLogger(__name__)


@dataclass
class BatchVectors:
    """A batch's main vectors in the active space, and which products' points are written again."""

    fresh: dict[str, np.ndarray]  # encoded now: the product's family is assigned from it
    main: dict[str, np.ndarray]  # every prepared product's, encoded now or kept as stored
    rewritten: list[str]  # a new main vector or another set of images: the whole point is written
    unchanged: list[str]  # only the payload is rewritten


@dataclass
class IngestOutcome:
    indexed: int = 0
    failed: int = 0
    retry_ids: list[str] = field(default_factory=list)
    retry_delay: float = 0.0


class IngestPipeline:
    def __init__(self, db: Database, writer: SpaceWriter, classifier: FamilyClassifier, fetcher: ImageFetcher,
                 settings: Settings) -> None:
        self.db = db
        self.writer = writer
        self.spaces = writer.spaces  # reads: the active space; payload updates: every kept one
        self.classifier = classifier
        self.fetcher = fetcher
        self.settings = settings
        self._fetch_pool = ThreadPoolExecutor(settings.ingest.fetch_concurrency, thread_name_prefix="fetch")

    def close(self) -> None:
        self._fetch_pool.shutdown(wait=True, cancel_futures=True)

    def process(self, tenant_id: str, job_id: str, product_ids: Sequence[str]) -> IngestOutcome:
        with self.db.session() as session:
            repo = CatalogRepository(session, tenant_id)
            items = {item.product_id: item for item in repo.pending_items(job_id, product_ids)}
            products = repo.get_products(list(items))
            job = repo.get_job(job_id)
        if not items:
            return IngestOutcome()
        in_batch = {pid: products[pid] for pid in items if pid in products}
        try:
            batch = self.writer.batch()
        except Exception as error:  # the model state could not be read: the whole batch comes back later
            log.exception("choosing the models of an ingest batch failed")
            failure = TrooplyError(str(error), code="internal_error", transient=True)
            return self._record(tenant_id, job_id, list(items), {}, set(), {pid: failure for pid in items})
        # While a migration runs, every image is fetched: the other model needs them all, and has none stored.
        # A product never indexed has no point to keep vectors from: a first import reads nothing back.
        indexed = [pid for pid, record in in_batch.items() if record.indexed_at is not None]
        stored = self._stored_points(tenant_id, indexed) if batch.only_active else {}
        prepared, errors = self._prepare(in_batch, stored, keep_main=bool(job and job.keep_images))
        try:
            stored_now = self._store(tenant_id, products, prepared, stored, batch)
        except TrooplyError as error:
            errors.update({pid: error for pid in prepared})
            stored_now = set()
        except Exception as error:  # index or model outage: retried like any transient failure
            log.exception("storing ingest batch failed")
            errors.update({pid: TrooplyError(str(error), code="internal_error", transient=True) for pid in prepared})
            stored_now = set()
        return self._record(tenant_id, job_id, list(items), prepared, stored_now, errors)

    def _stored_points(self, tenant_id: str, product_ids: list[str]) -> dict[str, IndexPoint]:
        """What the active model's index holds of these products: the vectors an unchanged image URL keeps."""
        if not product_ids:
            return {}
        try:
            found = self.spaces.retrieve(tenant_id, product_ids)  # the active model's
        except Exception:  # every image is fetched and encoded again instead
            log.exception("reading the stored images of %d products failed", len(product_ids))
            return {}
        return {point.product_id: point for point in found}

    def _prepare(self, products: dict[str, ProductRecord], stored: dict[str, IndexPoint],
                 keep_main: bool) -> tuple[dict[str, PreparedProduct], dict[str, TrooplyError]]:
        """Every image to fetch is fetched at once (the pool bounds it); an extra image that fails is listed on its
        product, which is prepared as long as its main image is."""
        plans = {pid: image_plan(record, stored_images(stored.get(pid)), keep_main) for pid, record in products.items()}
        futures = {(pid, position, url): self._fetch_pool.submit(self._prepare_one, url)
                   for pid, (to_fetch, _) in plans.items() for position, url in to_fetch}
        ready: dict[str, dict[int, PreparedImage]] = {pid: dict(kept) for pid, (_, kept) in plans.items()}
        failed: dict[str, dict[int, tuple[str, TrooplyError]]] = {pid: {} for pid in products}
        for (pid, position, url), future in futures.items():
            try:
                ready[pid][position] = future.result()
            except TrooplyError as error:
                failed[pid][position] = (url, error)
            except Exception as error:
                # A bug met by one product fails that product alone, never its batch-mates.
                log.exception("preparing product %r failed unexpectedly", pid)
                failed[pid][position] = (url, TrooplyError(
                    f"unexpected error while preparing the image ({type(error).__name__})", code="internal_error"))
        prepared, errors = {}, {}
        for pid, record in products.items():
            if 0 in failed[pid]:
                errors[pid] = failed[pid][0][1]
                continue
            urls = dict(enumerate(product_images(record)))
            prepared[pid] = PreparedProduct(
                urls[0], ready[pid][0], [ImageSlot(position, urls[position], image)
                                for position, image in sorted(ready[pid].items()) if position > 0],
                {url: error for url, error in failed[pid].values()})
        return prepared, errors

    def _prepare_one(self, image_url: str) -> PreparedImage:
        decoded = fetch_catalogue_image(self.fetcher, self.settings.images, image_url)
        return PreparedImage({
            "width": decoded.width, "height": decoded.height,
            "aspect_ratio": aspect_ratio(decoded.width, decoded.height),
            "colour_palette": palette_payload(colour_palette(decoded.image)), "content_hash": decoded.content_hash,
        }, decoded)

    def _store(self, tenant_id: str, products: dict[str, ProductRecord], prepared: dict[str, PreparedProduct],
               stored: dict[str, IndexPoint], batch: SpaceBatch) -> set[str]:
        encoder, vectors = self._encode(products, prepared, stored, batch)
        with self.db.session() as session:
            repo = CatalogRepository(session, tenant_id)
            # Held until the vectors are written: a DELETE waits for it, or lands first and the re-read
            # below no longer finds the product, so a deleted product never gets a vector back.
            repo.lock_products(list(prepared))
            # Re-read so a PATCH that landed while we fetched is not overwritten by stale metadata.
            points = self._points(repo.get_products(list(prepared)), prepared, vectors, encoder)
            batch.store(session, tenant_id, [points[pid] for pid in vectors.rewritten if pid in points])
            for pid in vectors.unchanged:
                if pid in points:
                    # The whole payload is rewritten: a field the merchant dropped must stop matching filters.
                    self.spaces.set_payload(tenant_id, pid, points[pid].payload, replace=True)
        batch.settle(tenant_id)
        return set(points)

    @staticmethod
    def _encode(products: dict[str, ProductRecord], prepared: dict[str, PreparedProduct],
                stored: dict[str, IndexPoint], batch: SpaceBatch) -> tuple[ClipEncoder, BatchVectors]:
        """Every fetched image, in every live space; a main image kept, or fetched with the same content, keeps
        its stored vector."""
        main_current = {pid for pid, product in prepared.items()
                        if pid in stored and _vector_is_current(products[pid], product.main)}
        to_encode = [pid for pid in prepared if pid not in main_current]
        extras = [(pid, slot) for pid in prepared for slot in prepared[pid].fetched()]
        images = [*(_decoded(prepared[pid].main).image for pid in to_encode),
                  *(_decoded(slot.image).image for _, slot in extras)]
        encoder, encoded = batch.encode(images, [*to_encode, *(pid for pid, _ in extras)])
        fresh = dict(zip(to_encode, encoded[:len(to_encode)], strict=True))
        for (_, slot), vector in zip(extras, encoded[len(to_encode):], strict=True):
            slot.image.vector = vector
        rewritten = [pid for pid in prepared if pid not in main_current or _rows_changed(stored[pid], prepared[pid])]
        return encoder, BatchVectors(fresh, fresh | {pid: stored[pid].vector for pid in main_current}, rewritten,
                                     [pid for pid in prepared if pid not in rewritten])

    def _points(self, current: dict[str, ProductRecord], prepared: dict[str, PreparedProduct],
                vectors: BatchVectors, encoder: ClipEncoder) -> dict[str, IndexPoint]:
        """The point of every product still there, with its family assigned and its payload from current rows."""
        points = {}
        for pid, record in current.items():
            self._assign_family(record, vectors.fresh.get(pid), encoder)
            images, gallery = gallery_rows(vectors.main[pid], prepared[pid])
            points[pid] = IndexPoint(pid, vectors.main[pid], index_payload(record, prepared[pid].main.signals, gallery),
                                     images)
        return points

    def _assign_family(self, record: ProductRecord, vector: np.ndarray | None, encoder: ClipEncoder) -> None:
        """Precomputed here so that ranking reads a label instead of classifying 30 candidates per query.
        Without a new vector, a known category re-maps the family; otherwise the stored one stays."""
        category = record.meta.get("category")
        guess = (self.classifier.family_of_product(category, vector, encoder) if vector is not None
                 else self.classifier.family_of_category(category))
        if guess is not None:
            record.family, record.family_confidence = guess.family, guess.confidence

    def _record(self, tenant_id: str, job_id: str, product_ids: list[str], prepared: dict[str, PreparedProduct],
                stored: set[str], errors: dict[str, TrooplyError]) -> IngestOutcome:
        outcome = IngestOutcome()
        with self.db.session() as session:
            repo = CatalogRepository(session, tenant_id)
            # Locked before the read: a DELETE landing between the read and the commit would leave this
            # session updating a row that is gone, failing the whole task and stranding the job as running.
            repo.lock_products(product_ids)
            current = repo.get_products(product_ids)
            for item in repo.pending_items(job_id, product_ids):
                record, error = current.get(item.product_id), errors.get(item.product_id)
                item.attempts += 1
                if record is None:
                    error = TrooplyError("the product was deleted before it was indexed", code="product_deleted")
                    _mark_failed(item, None, error)
                    outcome.failed += 1
                    INGEST_OUTCOMES.labels("failed", error.code).inc()
                elif item.product_id in stored:
                    product = prepared[item.product_id]
                    self._mark_indexed(item, record, product)
                    outcome.indexed += 1
                    INGEST_OUTCOMES.labels("indexed", "").inc()
                    if self._retry_extra_images(item, product):  # indexed already; its failed extras come back
                        item.status = PENDING
                        outcome.retry_ids.append(item.product_id)
                        outcome.retry_delay = max(outcome.retry_delay, self._backoff(item.attempts))
                elif error is not None and error.transient and item.attempts < self.settings.ingest.max_attempts:
                    outcome.retry_ids.append(item.product_id)
                    outcome.retry_delay = max(outcome.retry_delay, self._backoff(item.attempts))
                    INGEST_OUTCOMES.labels("retried", error.code).inc()
                else:
                    _mark_failed(item, record, error)
                    outcome.failed += 1
                    INGEST_OUTCOMES.labels("failed", item.error_code).inc()
        return outcome

    def _backoff(self, attempts: int) -> float:
        return self.settings.ingest.retry_base_delay * 2 ** (attempts - 1)

    def _retry_extra_images(self, item: IngestItem, product: PreparedProduct) -> bool:
        """An extra image failed for a passing reason: tried again with the product's retries, never failing it."""
        return (item.attempts < self.settings.ingest.max_attempts
                and any(error.transient for error in product.image_errors.values()))

    @staticmethod
    def _mark_indexed(item: IngestItem, record: ProductRecord | None, product: PreparedProduct) -> None:
        item.status, item.error_code, item.error_message = INDEXED, None, None
        if record is not None:
            record.status, record.error_code, record.error_message = INDEXED, None, None
            main = product.main
            record.content_hash = main.decoded.content_hash if main.decoded else main.signals.get(
                "content_hash", record.content_hash)
            record.image_errors = image_errors(product)
            record.indexed_at = utcnow()


def _vector_is_current(record: ProductRecord, image: PreparedImage) -> bool:
    if image.decoded is None:
        return True  # kept as stored, not fetched
    return record.indexed_at is not None and record.content_hash == image.decoded.content_hash


def _decoded(image: PreparedImage) -> DecodedImage:
    assert image.decoded is not None, "only fetched images are encoded"
    return image.decoded


def _rows_changed(point: IndexPoint, product: PreparedProduct) -> bool:
    """Whether the product's stored images differ from those prepared (one added, removed or fetched anew)."""
    if product.fetched():
        return True
    prepared = [product.main_url, *(slot.url for slot in product.extras)] if product.extras else []
    return gallery_urls(point.payload) != prepared


def _mark_failed(item: IngestItem, record: ProductRecord | None, error: TrooplyError | None) -> None:
    code = error.code if error else "internal_error"
    message = error.message if error else "ingest failed"
    item.status, item.error_code, item.error_message = FAILED, code, message
    if record is not None:
        record.status, record.error_code, record.error_message = FAILED, code, message


def run_ingest_task(pipeline: IngestPipeline, dispatcher: Dispatcher, tenant_id: str, job_id: str,
                    product_ids: list[str]) -> IngestOutcome:
    """The one task body both queue shapes run; transient failures come back later with backoff."""
    outcome = pipeline.process(tenant_id, job_id, product_ids)
    if outcome.retry_ids:
        dispatcher.send(INGEST_TASK, [tenant_id, job_id, outcome.retry_ids], delay=outcome.retry_delay)
    return outcome
