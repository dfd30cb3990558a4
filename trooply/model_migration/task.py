"""Re-encoding one tenant into the target model: the migration's background task.

Products are paged in id order after the tenant's persisted cursor; each page is fetched and decoded with
ingest's rules (safe fetch, pixel caps, retries of transient failures), encoded by the target model, and
written to the target's index with the payload copied from the active index (colour, aspect and family need
no recomputation). The vectors, the cursor and the counts of a page land together, so a killed process
resumes at the first page it had not recorded, and a page done twice writes the same points again. The paging,
the cursor, the stop and the retries are the walk of `tasks/walker.py`; this module says what a page is.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from sqlalchemy.orm import Session

from trooply.batching import INGEST
from trooply.catalog.gallery import gallery_urls
from trooply.catalog.models import ProductRecord
from trooply.catalog.repository import CatalogRepository
from trooply.config import Settings
from trooply.db import Database
from trooply.errors import TrooplyError
from trooply.index.base import IndexPoint
from trooply.model_migration.models import DONE, RUNNING
from trooply.model_migration.repository import TenantMigrationRepository
from trooply.spaces.live import LiveSpaces
from trooply.spaces.state import ModelSnapshot, ModelSpec
from trooply.tasks.walker import ProgressWalk, TenantWalker
from trooply.vision.catalog_image import fetch_catalogue_image
from trooply.vision.encoder import ClipEncoder
from trooply.vision.fetch import ImageFetcher

log = logging.getLogger(__name__)


@dataclass
class EncodedPage:
    urls: dict[str, str]  # the image each product's vector (or error) comes from
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    errors: dict[str, TrooplyError] = field(default_factory=dict)
    # A product of several images: the URLs of the rows its active index holds (main first), and their vectors.
    galleries: dict[str, list[str]] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)


class TenantReencoder:
    def __init__(self, db: Database, spaces: LiveSpaces,
                 encoder_for: Callable[[ModelSpec], ClipEncoder], fetcher: ImageFetcher, settings: Settings,
                 read_state: Callable[[], ModelSnapshot]) -> None:
        self.db = db
        self.spaces = spaces  # each space's index opens on first use
        self._encoder_for = encoder_for  # the target model loads only where a migration runs
        self.fetcher = fetcher
        self.settings = settings
        self._read_state = read_state
        self._walker = TenantWalker(db, settings.ingest.fetch_concurrency, "migrate-fetch",
                                    settings.ingest.max_attempts, settings.ingest.retry_base_delay)

    def close(self) -> None:
        """Stops between two pages: the tenant stays unfinished and is resumed at the next start."""
        self._walker.stop()

    def run(self, tenant_id: str, target_space: str) -> bool:
        """Re-encodes the tenant's products; True when it finished (then the caller may cut over)."""
        state = self._read_state()
        target = state.target
        if target is None or target.space.name != target_space:
            return False  # the migration this task was sent for is over (cut over, or another one started)
        return self._walker.walk(tenant_id, _Reencode(self, tenant_id, state), self.settings.migration.page_size)

    def _retry_failures(self, tenant_id: str, state: ModelSnapshot, encoder: ClipEncoder) -> None:
        """Each run tries every recorded failure once more (an image back online, ingest's second encode)."""
        after = None
        while not self._walker.stopping:
            with self.db.session() as session:
                repo = TenantMigrationRepository(session, tenant_id)
                repo.lock()  # before the failure rows, as every writer of both takes them
                failed = repo.failures_after(after, self.settings.migration.page_size)
                products = repo.indexed(failed)
                # Deleted products' failures go; one being ingested again keeps its failure until that store
                # (which clears it, or records it again), and is tried on the next run.
                repo.clear_failures(sorted(set(failed) - repo.existing(failed)))
            if not failed:
                return
            encoded = self._encode(tenant_id, state, products, encoder)
            if self._walker.stopping:
                return
            with self.db.session() as session:
                repo = TenantMigrationRepository(session, tenant_id)
                self._write(session, repo, tenant_id, state, encoded)
            after = failed[-1]

    def _encode(self, tenant_id: str, state: ModelSnapshot, products: Sequence[ProductRecord],
                encoder: ClipEncoder) -> EncodedPage:
        """Every image a product has in the active index, in its rows' order; an image that cannot be fetched now
        fails the product's re-encode (recorded, and tried again by the next run)."""
        page = EncodedPage({p.id: p.image_url for p in products})
        active = self.spaces.index_of(state.active.space)
        stored = {point.product_id: gallery_urls(point.payload) for point in
                  active.retrieve(tenant_id, [p.id for p in products])} if products else {}
        page.galleries = {pid: urls for pid, urls in stored.items() if urls}
        wanted = {p.id: page.galleries.get(p.id) or [p.image_url] for p in products}
        read = partial(fetch_catalogue_image, self.fetcher, self.settings.images)
        images, errors = self._walker.each({(pid, row): partial(self._walker.retrying, partial(read, url))
                                            for pid, urls in wanted.items() for row, url in enumerate(urls)})
        page.errors.update({pid: error for (pid, _row), error in errors.items()})
        complete = {key: image for key, image in images.items() if key[0] not in page.errors}
        if complete:
            vectors = dict(zip(complete, encoder.encode_images([image.image for image in complete.values()],
                                                               priority=INGEST), strict=True))
            for pid, urls in wanted.items():
                if pid not in page.errors:
                    page.vectors[pid] = vectors[pid, 0]
                    if len(urls) > 1:
                        page.images[pid] = np.stack([vectors[pid, row] for row in range(len(urls))])
        return page

    def _write(self, session: Session, repo: TenantMigrationRepository, tenant_id: str, state: ModelSnapshot,
               page: EncodedPage) -> int:
        """Writes the page's vectors and records its failures; returns how many products were written."""
        ids = list(page.urls)
        catalog = CatalogRepository(session, tenant_id)
        if ids:
            # Held until the points are written, as ingest does: a DELETE or a new image waits for it, or lands
            # first and the re-read below leaves the product to ingest, which writes both models itself.
            catalog.lock_products(ids)
        if not repo.lock_if_running():
            return 0  # aborted (or reopened) since the page began: its vectors must not outlive the drop
        current = {p.id: p for p in repo.indexed(ids)} if ids else {}
        # Products whose image is still the one tried; the others are ingest's (which writes both models).
        still = [pid for pid in ids if pid in current and current[pid].image_url == page.urls[pid]]
        encoded = [pid for pid in still if pid in page.vectors]
        indexes = self.spaces
        stored = {p.product_id: p.payload for p in indexes.index_of(state.active.space).retrieve(tenant_id, encoded)}
        assert state.target is not None
        # A product whose images changed meanwhile is tried again by the next run.
        moved = {pid for pid in encoded if pid in stored and gallery_urls(stored[pid]) != page.galleries.get(pid, [])}
        points = [IndexPoint(pid, page.vectors[pid], stored[pid], page.images.get(pid)) for pid in encoded
                  if pid in stored and pid not in moved]
        indexes.for_writes(state.target.space).upsert(tenant_id, points)
        repo.clear_failures(still)
        for pid in still:
            if pid in page.errors:
                repo.record_failure(pid, page.errors[pid].code, page.errors[pid].message)
            elif pid in moved:
                repo.record_failure(pid, "images_changed", "the product's images changed during its re-encode")
        return len(points)


class _Reencode(ProgressWalk[ProductRecord, EncodedPage]):
    """One run over one tenant: its recorded failures tried again, then its pages encoded by the target model,
    written to the target's index with their failures and the cursor."""

    what = "migration"

    def __init__(self, reencoder: TenantReencoder, tenant_id: str, state: ModelSnapshot) -> None:
        assert state.target is not None
        self.reencoder = reencoder
        self.tenant_id = tenant_id
        self.state = state
        self.target = state.target

    def before_pages(self) -> None:
        self.encoder = self.reencoder._encoder_for(self.target)  # the target model loads only where a run is due
        self.reencoder._retry_failures(self.tenant_id, self.state, self.encoder)

    def progress(self, session: Session) -> TenantMigrationRepository:
        return TenantMigrationRepository(session, self.tenant_id)

    def work(self, items: Sequence[ProductRecord]) -> EncodedPage:
        return self.reencoder._encode(self.tenant_id, self.state, items, self.encoder)

    def record(self, session: Session, cursor: str | None, items: Sequence[ProductRecord],
               worked: EncodedPage) -> bool:
        repo = TenantMigrationRepository(session, self.tenant_id)
        written = self.reencoder._write(session, repo, self.tenant_id, self.state, worked)
        return repo.advance(cursor, items[-1].id, written, repo.count_indexed_after(None))

    def finish(self, session: Session) -> None:
        repo = TenantMigrationRepository(session, self.tenant_id)
        progress = repo.lock()  # else an abort deleting it now would fail this update
        if progress is not None and progress.status == RUNNING:
            progress.total = repo.count_indexed_after(None)
            progress.done = max(0, progress.total - repo.failure_count())
            progress.status = DONE


