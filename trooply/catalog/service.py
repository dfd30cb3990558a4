"""Catalog: accept products, track their ingest jobs, and keep SQL and the index in step."""

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from trooply.catalog.models import (
    FAILED,
    PENDING,
    PRODUCT_STATUSES,
    IngestItem,
    IngestJob,
    ProductRecord,
    product_images,
)
from trooply.catalog.payload import index_payload
from trooply.catalog.repository import CatalogMaintenance, CatalogRepository
from trooply.catalog.schemas import TOO_MANY_IMAGES, ProductBatch, ProductIn, ProductPatch
from trooply.config import Settings
from trooply.db import Database, utcnow
from trooply.errors import InvalidRequest, NotFound, QuotaExceeded
from trooply.ranking.families import FamilyGuess
from trooply.scheduling import TenantSlots
from trooply.spaces.live import LiveSpaces
from trooply.tasks.names import INGEST_TASK
from trooply.tasks.queue import Dispatcher
from trooply.tenancy.repository import TenantRepository
from trooply.tenancy.service import live_tenant
from trooply.vision.colour import palette_histogram, palette_names, stored_palette

log = logging.getLogger(__name__)
MAX_JOB_ERRORS = 1000
UNCHANGED, REJECTED = "unchanged", "rejected"
TOP_CATEGORIES = 50


@dataclass
class ProductAdmission:
    id: str | None
    status: str  # pending | unchanged | rejected
    error: dict[str, str] | None = None
    index: int = 0  # the product's place in the request


@dataclass
class Submission:
    job_id: str | None
    products: list[ProductAdmission] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(1 for p in self.products if p.status == PENDING)

    @property
    def unchanged(self) -> int:
        return sum(1 for p in self.products if p.status == UNCHANGED)

    @property
    def rejected(self) -> int:
        return sum(1 for p in self.products if p.status == REJECTED)


class CatalogService:
    def __init__(self, db: Database, spaces: LiveSpaces, dispatcher: Dispatcher, settings: Settings,
                 classify_category: Callable[[str | None], FamilyGuess | None]) -> None:
        self.db = db
        self.classify_category = classify_category
        self.spaces = spaces
        self.dispatcher = dispatcher
        self.settings = settings
        # An import holds its file, its text and a batch: one at a time per tenant, so one account's uploads
        # cannot add up to the host's memory (a second while one runs is a 429).
        self.imports = TenantSlots(1, "an import or feed sync")  # feed syncs hold it too (trooply/feeds)

    def submit(self, tenant_id: str, products: list[ProductIn], skip_unchanged: bool = False,
               indexes: list[int] | None = None, keep_images: bool = False, trim_images: bool = False) -> Submission:
        """Queues the products as one job. With `skip_unchanged`, a product stored with the same image URLs and
        metadata (and not failed) is answered `unchanged` and not queued: how a re-run import resumes. `indexes`:
        each product's place in the request (its position in `products` by default). `keep_images`: the vectors
        of image URLs already stored are kept, not fetched again (feed syncs). `trim_images`: a product with more
        images than the plan allows keeps its first ones instead of being refused (a feed's item, which the merchant
        cannot shorten for us)."""
        with self.db.session() as session:
            # Locked: serialises quota checks across processes, and a deletion waits for this submission (or it
            # sees the tenant deleted: a key cached a moment before the deletion queues nothing).
            tenant = live_tenant(TenantRepository(session, tenant_id), lock=True)
            repo = CatalogRepository(session, tenant_id)
            cap = self.settings.images_per_product(tenant.plan)
            if trim_images:
                products = [_trimmed(product, cap) for product in products]
            admissions = self._admit(repo, self.settings.plan(tenant.plan).max_products, products,
                                     skip_unchanged, cap)
            for admission, index in zip(admissions, indexes or range(len(products)), strict=True):
                admission.index = index
            accepted = [product.id for product, admission in zip(products, admissions, strict=True)
                        if admission.status == PENDING]
            if all(p.status == REJECTED for p in admissions):
                reason = cast(dict[str, str], admissions[0].error)  # a rejected admission always says why
                if reason["code"] == TOO_MANY_IMAGES:
                    raise InvalidRequest(reason["message"], code=TOO_MANY_IMAGES, details=[vars(p) for p in admissions])
                raise QuotaExceeded(reason["message"], details=[vars(p) for p in admissions])
            if not accepted:
                return Submission(None, admissions)
            job_id = _add_job(repo, accepted, keep_images)
        self._dispatch_in_batches(tenant_id, job_id, accepted)
        return Submission(job_id, admissions)

    def submit_batch(self, tenant_id: str, batch: ProductBatch, skip_unchanged: bool = False) -> Submission:
        """Queues a request's valid products and answers every product of it in request order, the invalid ones
        rejected with their code and field. A request without one valid product is refused whole."""
        if not batch.products:
            raise batch.refusal()
        submission = self.submit(tenant_id, batch.products, skip_unchanged, batch.indexes)
        invalid = [ProductAdmission(p.product_id, REJECTED, {"code": p.code, "message": p.message, "field": p.field},
                                    p.index) for p in batch.invalid]
        submission.products = sorted(submission.products + invalid, key=lambda admission: admission.index)
        return submission

    def _admit(self, repo: CatalogRepository, limit: int | None, products: list[ProductIn], skip_unchanged: bool,
               images_cap: int) -> list[ProductAdmission]:
        existing = repo.get_products([p.id for p in products])
        held = repo.count_products()
        admissions = []
        for product in products:
            record = existing.get(product.id)
            if len(product.images or ()) > images_cap:
                admissions.append(ProductAdmission(product.id, REJECTED, _too_many_images(product.id, images_cap)))
                continue
            if record is None and limit is not None and held >= limit:
                admissions.append(ProductAdmission(product.id, REJECTED, {
                    "code": "quota_exceeded",
                    "message": f"the plan holds at most {limit} products; this one would exceed it"}))
                continue
            if (skip_unchanged and record is not None and record.status != FAILED
                    and record.image_url == product.image_url and record.meta == product.metadata()):
                admissions.append(ProductAdmission(product.id, UNCHANGED))
                continue
            if record is None:
                held += 1
                record = ProductRecord(id=product.id)
                repo.add(record)
            record.image_url = product.image_url
            record.meta = product.metadata()
            record.status, record.error_code, record.error_message = PENDING, None, None
            admissions.append(ProductAdmission(product.id, PENDING))
        return admissions

    def _dispatch_in_batches(self, tenant_id: str, job_id: str, product_ids: list[str]) -> None:
        size = self.settings.ingest.encode_batch_size
        for start in range(0, len(product_ids), size):
            self.dispatcher.send(INGEST_TASK, [tenant_id, job_id, product_ids[start:start + size]])

    def get(self, tenant_id: str, product_id: str) -> ProductRecord:
        with self.db.session() as session:
            record = CatalogRepository(session, tenant_id).get_product(product_id)
        if record is None:
            raise NotFound(f"no product {product_id!r}", code="product_not_found")
        return record

    def list(self, tenant_id: str, status: str | None, limit: int, after: str | None) -> list[ProductRecord]:
        if status is not None and status not in PRODUCT_STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(PRODUCT_STATUSES)}", code="invalid_status")
        with self.db.session() as session:
            return CatalogRepository(session, tenant_id).list_products(status, limit, after)

    def patch(self, tenant_id: str, product_id: str, patch: ProductPatch) -> ProductRecord:
        if patch.image_url is not None:
            raise InvalidRequest("PATCH changes metadata and the image list; POST the product again to change its "
                                 "image_url, or PATCH `images` with the new main image first",
                                 code="image_change_requires_post")
        # null leaves a field as it is: removing a field is a re-POST, which rewrites the whole payload.
        changes = patch.model_dump(exclude_none=True, exclude={"image_url", "images"})
        with self.db.session() as session:
            tenant = live_tenant(TenantRepository(session, tenant_id))
            repo = CatalogRepository(session, tenant_id)
            record = repo.get_product(product_id)
            if record is None:
                raise NotFound(f"no product {product_id!r}", code="product_not_found")
            record.meta = {**record.meta, **changes}
            job_id = None
            if patch.images is not None and list(dict.fromkeys(patch.images)) != product_images(record):
                cap = self.settings.images_per_product(tenant.plan)
                job_id = _requeue_with_images(repo, record, patch.images, cap)
            elif record.indexed_at is not None:
                # Metadata only: the stored vector and image signals stay as they are.
                mapped = self.classify_category(record.meta.get("category"))
                if mapped is not None:
                    record.family, record.family_confidence = mapped.family, mapped.confidence
                self.spaces.set_payload(tenant_id, product_id, index_payload(record))
        if job_id is not None:
            self._dispatch_in_batches(tenant_id, job_id, [product_id])
        return record

    def delete(self, tenant_id: str, product_id: str) -> None:
        with self.db.session() as session:
            if not CatalogRepository(session, tenant_id).delete_product(product_id):
                raise NotFound(f"no product {product_id!r}", code="product_not_found")
            self.spaces.delete(tenant_id, [product_id])

    def job(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            repo = CatalogRepository(session, tenant_id)
            job = repo.get_job(job_id)
            if job is None:
                raise NotFound(f"no job {job_id!r}", code="job_not_found")
            # Counts first: reads here are not one snapshot, and a job seen completed must list all its errors.
            summary = _job_summary(repo, job)
            errors = [{"product_id": item.product_id, "code": item.error_code, "message": item.error_message}
                      for item in repo.failed_items(job_id, MAX_JOB_ERRORS)]
            return {**summary, "errors": errors}

    def reindex(self, tenant_id: str) -> str | None:
        """Drop the tenant's vectors and queue every product again (after a model change)."""
        self.spaces.drop_tenant(tenant_id)
        with self.db.session() as session:
            repo = CatalogRepository(session, tenant_id)
            repo.forget_vectors()
            product_ids = repo.all_product_ids()
            if not product_ids:
                return None
            job_id = _add_job(repo, product_ids)
        self._dispatch_in_batches(tenant_id, job_id, product_ids)
        return job_id

    def retry_failed(self, tenant_id: str, product_ids: Sequence[str] | None) -> dict[str, Any]:
        """Queues failed products again as a new job: every failed product, or those of `product_ids`
        (the others are reported as skipped: not found, or not failed)."""
        with self.db.session() as session:
            repo = CatalogRepository(session, tenant_id)
            failed = repo.failed_products(product_ids)
            retried = [record.id for record in failed]
            skipped = []
            if product_ids is not None:
                found, queued = repo.get_products(product_ids), set(retried)
                skipped = [{"id": pid, "reason": "not_failed" if pid in found else "product_not_found"}
                           for pid in dict.fromkeys(product_ids) if pid not in queued]
            for record in failed:
                record.status, record.error_code, record.error_message = PENDING, None, None
            job_id = _add_job(repo, retried) if retried else None
        if job_id is not None:
            self._dispatch_in_batches(tenant_id, job_id, retried)
        return {"job_id": job_id, "requeued": len(retried), "skipped": skipped}

    def stats(self, tenant_id: str, plan: str) -> dict[str, Any]:
        """Products by status, failures by code, the largest categories, and the plan's allowance."""
        with self.db.session() as session:
            repo = CatalogRepository(session, tenant_id)
            counts = {status: 0 for status in PRODUCT_STATUSES} | repo.status_counts()
            failures = repo.failure_counts()
            categories = repo.category_counts(TOP_CATEGORIES)
        return {"counts": counts, "total": sum(counts.values()), "allowance": self.settings.plan(plan).max_products,
                "failures": failures, "categories": [{"category": name, "count": n} for name, n in categories]}

    def recent_jobs(self, tenant_id: str, limit: int) -> Sequence[dict[str, Any]]:
        with self.db.session() as session:
            repo = CatalogRepository(session, tenant_id)
            return [_job_summary(repo, job) for job in repo.recent_jobs(limit)]

    def image_signals(self, tenant_id: str, product_id: str) -> dict[str, Any]:
        """What ranking knows of the product beyond its metadata: its family and its stored image signals
        (size, aspect ratio, colour palette and the colour names people would give it). `image` is None until
        indexed; a payload from before palettes shows its old histogram, no names, and `colour_stale`."""
        record = self.get(tenant_id, product_id)
        points = self.spaces.retrieve(tenant_id, [product_id]) if record.indexed_at is not None else []
        stored = points[0].payload.get("image") if points else None
        image = None
        if stored:
            palette = stored_palette(stored)
            names = palette_names(palette) if palette else []
            image = {"width": stored.get("width"), "height": stored.get("height"),
                     "aspect_ratio": stored.get("aspect_ratio"), "colour_stale": palette is None,
                     "colour_histogram": palette_histogram(palette) if palette else stored.get("colour_hist") or [],
                     "colour_palette": [{"lab": list(colour.lab), "share": colour.share} for colour in palette or ()],
                     "colour_swatch": [name | {"overlap": name["share"]} for name in names]}
        return {"product_id": record.id, "status": record.status, "family": record.family,
                "family_confidence": record.family_confidence, "image": image}

    def resume_unfinished(self, stale_after: float | None = None) -> int:
        """Queue again every accepted item not yet final: the SQL table, not the queue, is the truth."""
        cutoff = utcnow() - timedelta(seconds=stale_after) if stale_after is not None else None
        with self.db.session() as session:
            items = CatalogMaintenance(session).claim_unfinished_items(cutoff)
            groups: dict[tuple[str, str], list[str]] = {}
            for item in items:
                groups.setdefault((item.tenant_id, item.job_id), []).append(item.product_id)
        for (tenant_id, job_id), product_ids in groups.items():
            self._dispatch_in_batches(tenant_id, job_id, product_ids)
        if items:
            log.info("resumed %d unfinished ingest items", len(items))
        return len(items)


def _requeue_with_images(repo: CatalogRepository, record: ProductRecord, images: list[str], cap: int) -> str:
    """A new image list: queued again, keeping the stored vectors of the URLs it still has (only the new ones are
    fetched and encoded); the product stays searchable by its stored images meanwhile."""
    urls = list(dict.fromkeys(images))
    if len(urls) > cap:
        problem = _too_many_images(record.id, cap)
        raise InvalidRequest(problem["message"], code=TOO_MANY_IMAGES, details=[problem])
    record.image_url = urls[0]
    meta = {key: value for key, value in record.meta.items() if key != "images"}
    record.meta = {**meta, "image_url": urls[0], **({"images": urls} if len(urls) > 1 else {})}
    record.status, record.error_code, record.error_message = PENDING, None, None
    return _add_job(repo, [record.id], keep_images=True)


def _trimmed(product: ProductIn, cap: int) -> ProductIn:
    if len(product.images or ()) <= cap:
        return product
    return product.model_copy(update={"images": product.images[:cap] if product.images and cap > 1 else None})


def _too_many_images(product_id: str, cap: int) -> dict[str, str]:
    return {"code": TOO_MANY_IMAGES, "field": "images",
            "message": f"product {product_id!r}: images holds more than the {cap} images a product may have"}


def _add_job(repo: CatalogRepository, product_ids: list[str], keep_images: bool = False) -> str:
    job_id = f"job_{uuid.uuid4().hex[:20]}"
    repo.add_job(IngestJob(id=job_id, total=len(product_ids), keep_images=keep_images),
                 [IngestItem(job_id=job_id, product_id=product_id) for product_id in product_ids])
    return job_id


def _job_summary(repo: CatalogRepository, job: IngestJob) -> dict[str, Any]:
    counts = {status: 0 for status in PRODUCT_STATUSES} | repo.job_counts(job.id)
    return {"job_id": job.id, "status": "running" if counts[PENDING] else "completed", "total": job.total,
            "counts": counts, "created_at": job.created_at}
