"""A feed's items applied to the tenant's catalogue, a batch at a time: new products are submitted (fetched and
encoded), a changed image is submitted again, changed text, price or stock is written to SQL and the index payload
with no fetch or encode, and the rest is left alone. Each product the feed supplies is marked with the run's number,
so the ones a complete run did not see are those that left the feed."""

import io
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from trooply.catalog.feed_formats import (
    AUTO,
    FEED_FORMATS,
    GOOGLE_XML,
    SNIFF_CHARS,
    FeedItem,
    FeedProblem,
    detect_format,
    feed_items,
    xml_items,
)
from trooply.catalog.imports import read_rows
from trooply.catalog.models import FAILED, ProductRecord, product_images
from trooply.catalog.payload import index_payload
from trooply.catalog.repository import CatalogRepository
from trooply.catalog.schemas import ProductIn
from trooply.catalog.service import CatalogService
from trooply.db import Database
from trooply.errors import InvalidRequest, QuotaExceeded
from trooply.feeds.repository import FeedRepository
from trooply.index.filters import BOOLEAN_FIELDS, KEYWORD_FIELDS, NUMERIC_FIELDS

BATCH = 500
KEEP_REJECTED = 1000
PROGRESS_EVERY_S = 2.0
ADDED, UPDATED, IMAGES_CHANGED, UNCHANGED, DELETED, REJECTED, FAILED_COUNT, KEPT_MISSING = (
    "added", "updated", "images_changed", "unchanged", "deleted", "rejected", "failed", "kept_missing")


class SyncInterrupted(Exception):
    """The process is stopping: the sync stays unfinished and runs again at the next start."""


class FeedDeleted(Exception):
    """The feed was deleted while its sync ran: the sync stops, its report gone with the feed."""


@dataclass
class SyncTally:
    counts: Counter[str] = field(default_factory=Counter)
    failed_by_code: Counter[str] = field(default_factory=Counter)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    valid_items: int = 0

    def reject(self, line: int, problem: FeedProblem) -> None:
        self.counts[REJECTED] += 1
        if len(self.rejected) < KEEP_REJECTED:
            self.rejected.append({"line": line, "product_id": problem.product_id, "code": problem.code,
                                  "message": problem.message, "field": problem.field})

    def fail(self, code: str) -> None:
        self.counts[FAILED_COUNT] += 1
        self.failed_by_code[code] += 1


def read_feed(file: IO[bytes], fmt: str) -> Iterator[FeedItem]:
    """The downloaded feed's items; `auto` is read from its first bytes. Our own CSV and JSONL go through the
    import's reader (which keeps the ids it has seen, to name a repeated one)."""
    if fmt == AUTO:
        fmt = detect_format(file.read(SNIFF_CHARS).decode("utf-8-sig", errors="replace"))
        file.seek(0)
    if fmt != GOOGLE_XML:
        text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
        try:
            yield from (feed_items(text, fmt) if fmt in FEED_FORMATS else _import_items(text, fmt))
        except UnicodeDecodeError as error:
            raise InvalidRequest(f"the feed is not UTF-8 text (byte {error.start} of a chunk)",
                                 code="invalid_feed") from None
        finally:
            text.detach()
        return
    yield from xml_items(file)  # bytes, so the declared encoding applies


def _import_items(lines: Iterable[str], fmt: str) -> Iterator[FeedItem]:
    for row in read_rows(lines, fmt):
        if row.product is not None:
            yield FeedItem(row.line, product=row.product, images=row.product.images or [row.product.image_url])
        elif row.rejected is not None:
            rejected = row.rejected
            yield FeedItem(row.line, problem=FeedProblem(rejected.product_id, rejected.code, rejected.message,
                                                         rejected.field))


class CatalogueDiff:
    def __init__(self, db: Database, catalog: CatalogService, tenant_id: str, feed_id: str, number: int,
                 progress: Callable[[SyncTally], None], stopping: Callable[[], bool]) -> None:
        self.db, self.catalog = db, catalog
        self.tenant_id, self.feed_id, self.number = tenant_id, feed_id, number
        self.tally = SyncTally()
        self._progress, self._stopping = progress, stopping
        self._reported = time.monotonic()

    def apply(self, items: Iterable[FeedItem]) -> SyncTally:
        batch: list[FeedItem] = []
        for item in items:
            batch.append(item)
            if len(batch) == BATCH:
                self._apply_batch(batch)
                batch = []
        if batch:
            self._apply_batch(batch)
        return self.tally

    def held(self) -> int:
        """The products the feed supplies (before `apply`: those it supplied when the sync began)."""
        with self.db.session() as session:
            return FeedRepository(session, self.tenant_id).count_members(self.feed_id)

    def delete_missing(self, held_before: int, max_share: float) -> str | None:
        """Deletes the products the feed supplied before and this run did not see, unless more than `max_share`
        of the `held_before` it supplied left at once (a feed cut short by its exporter): then none, and why."""
        with self.db.session() as session:
            missing = FeedRepository(session, self.tenant_id).count_members(self.feed_id, seen_before=self.number)
        if missing > max_share * held_before:
            self.tally.counts[KEPT_MISSING] = missing
            return (f"{missing:,} of the feed's {held_before:,} products left it at once, more than "
                    f"TROOPLY_FEED_MAX_DELETE_SHARE ({max_share:.0%}) lets a sync delete: none was deleted. If the "
                    "feed did shrink, delete them yourself or raise the share")
        self._delete_missing()
        return None

    def _delete_missing(self) -> int:
        deleted = 0
        while True:
            self._check_stopping()
            with self.db.session() as session:
                feeds = FeedRepository(session, self.tenant_id)
                gone = feeds.missing(self.feed_id, self.number, BATCH)
                if not gone:
                    return deleted
                catalog = CatalogRepository(session, self.tenant_id)
                deleted += sum(1 for product_id in gone if catalog.delete_product(product_id))
                feeds.forget(self.feed_id, gone)
                self.catalog.spaces.delete(self.tenant_id, gone)
            self.tally.counts[DELETED] = deleted
            self._progress(self.tally)

    def _apply_batch(self, batch: list[FeedItem]) -> None:
        self._check_stopping()
        products: dict[str, ProductIn] = {}
        lines: dict[str, int] = {}
        for item in batch:
            if item.problem is not None:
                self.tally.reject(item.line, item.problem)
            elif item.product is not None and item.product.id in products:
                self.tally.reject(item.line, _repeated(item.product.id))
            elif item.product is not None:
                products[item.product.id], lines[item.product.id] = item.product, item.line
        submit: list[tuple[ProductIn, str]] = []
        with self.db.session() as session:
            feeds = FeedRepository(session, self.tenant_id)
            if feeds.get(self.feed_id) is None:
                raise FeedDeleted
            for product_id, member in feeds.members(self.feed_id, list(products)).items():
                if member.seen == self.number:  # an earlier batch of this run had it
                    self.tally.reject(lines[product_id], _repeated(product_id))
                    del products[product_id]
            catalog = CatalogRepository(session, self.tenant_id)
            records = catalog.get_products(list(products))
            for product_id, product in products.items():
                record = records.get(product_id)
                if record is None:
                    submit.append((product, ADDED))
                elif product_images(record) != (product.images or [product.image_url]):
                    submit.append((product, IMAGES_CHANGED))
                elif record.meta == product.metadata():
                    self.tally.counts[UNCHANGED] += 1
                elif record.status == FAILED:  # no vector to update: this change is its retry
                    submit.append((product, UPDATED))
                else:
                    record.meta = product.metadata()
                    if record.indexed_at is not None:
                        self._write_payload(record)
                    self.tally.counts[UPDATED] += 1
            feeds.mark_seen(self.feed_id, list(products), self.number)
        self.tally.valid_items += len(products)
        if submit:
            self._submit(submit)
        if time.monotonic() - self._reported >= PROGRESS_EVERY_S:
            self._reported = time.monotonic()
            self._progress(self.tally)

    def _write_payload(self, record: ProductRecord) -> None:
        """Metadata only, as PATCH /v1/products does: the vector and image signals stay; a field the feed no longer
        has is cleared from the filters."""
        mapped = self.catalog.classify_category(record.meta.get("category"))
        if mapped is not None:
            record.family, record.family_confidence = mapped.family, mapped.confidence
        payload = {name: None for name in (*KEYWORD_FIELDS, *NUMERIC_FIELDS, *BOOLEAN_FIELDS)}
        self.catalog.spaces.set_payload(self.tenant_id, record.id, payload | index_payload(record))

    def _submit(self, submit: list[tuple[ProductIn, str]]) -> None:
        try:
            # Only the image URLs that changed are fetched; an item beyond the plan's cap keeps its first images.
            submission = self.catalog.submit(self.tenant_id, [product for product, _kind in submit], keep_images=True,
                                             trim_images=True)
        except QuotaExceeded as refused:
            for _entry in submit:
                self.tally.fail(refused.code)
            return
        for (_sent, kind), admission in zip(submit, submission.products, strict=True):  # in the products' order
            if admission.status == "pending":
                self.tally.counts[ADDED if kind == ADDED else UPDATED] += 1
                if kind == IMAGES_CHANGED:
                    self.tally.counts[IMAGES_CHANGED] += 1
            else:
                self.tally.fail((admission.error or {}).get("code", "rejected"))
        if submission.job_id is not None:
            self.tally.jobs.append(submission.job_id)

    def _check_stopping(self) -> None:
        if self._stopping():
            raise SyncInterrupted


def _repeated(product_id: str) -> FeedProblem:
    return FeedProblem(product_id, "duplicate_id", "the id appears earlier in the feed", "id")
