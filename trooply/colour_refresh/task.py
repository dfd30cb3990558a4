"""Recomputing one tenant's stored colour signal: the colour refresh's background task.

Products are paged in id order after the tenant's persisted cursor. A product whose payload already holds a
palette costs nothing; the others have their image fetched and decoded again with ingest's rules (safe fetch,
pixel caps, retries of transient failures), and only the colour is computed: no CLIP encode, the vector stays.
The palette is written under the products' locks, only while the product still has that image and no palette
(ingest may have written a newer one meanwhile), and the cursor and counts of a page land after its writes, so a
killed process resumes at the first page it had not recorded, and a page done twice finds its palettes there.
Searches answer throughout: a product not yet recomputed has a neutral colour signal. The paging, the cursor, the
stop and the retries are the walk of `tasks/walker.py`; this module says what a page is.
"""

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from trooply.catalog.models import ProductRecord
from trooply.catalog.repository import CatalogRepository
from trooply.colour_refresh.repository import ColourRefreshRepository
from trooply.config import Settings
from trooply.db import Database
from trooply.spaces.live import LiveSpaces
from trooply.tasks.walker import ProgressWalk, TenantWalker
from trooply.vision.catalog_image import fetch_catalogue_image
from trooply.vision.colour import Palette, colour_palette, palette_payload, stored_palette
from trooply.vision.fetch import ImageFetcher

log = logging.getLogger(__name__)
PAGE_SIZE = 32


class ColourRefresher:
    def __init__(self, db: Database, spaces: LiveSpaces, fetcher: ImageFetcher, settings: Settings,
                 page_size: int = PAGE_SIZE) -> None:
        self.db = db
        self.page_size = page_size
        self.spaces = spaces  # each space's index opens on first use
        self.fetcher = fetcher
        self.settings = settings
        self._walker = TenantWalker(db, settings.ingest.fetch_concurrency, "colour-fetch",
                                    settings.ingest.max_attempts, settings.ingest.retry_base_delay)

    def close(self) -> None:
        """Stops between two pages: the tenant stays unfinished and is resumed at the next start."""
        self._walker.stop()

    def run(self, tenant_id: str) -> bool:
        """Brings the tenant's stored colours up to date; True when it finished."""
        return self._walker.walk(tenant_id, _Refresh(self, tenant_id), self.page_size)

    def _refresh_page(self, tenant_id: str, products: Sequence[ProductRecord]) -> dict[str, tuple[str, str]]:
        """Recomputes the page's stale colours; returns the products that failed (their images), each with its
        error code and message."""
        stored = {p.product_id: p.payload for p in self.spaces.retrieve(tenant_id, [p.id for p in products])}
        stale = {p.id: p.image_url for p in products
                 if p.id in stored and stored_palette(stored[p.id].get("image") or {}) is None}
        if not stale:
            return {}
        palettes, errors = self._walker.each({pid: partial(self._palette_of, url) for pid, url in stale.items()})
        for pid, error in errors.items():
            log.info("colour refresh: product %r of tenant %s kept its old colour (%s)", pid, tenant_id, error.code)
        if palettes and not self._walker.stopping:
            self._write(tenant_id, stale, palettes)
        return {pid: (error.code, error.message) for pid, error in errors.items()}

    def _write(self, tenant_id: str, urls: dict[str, str], palettes: dict[str, Palette]) -> None:
        index = self.spaces
        with self.db.session() as session:
            ids = sorted(palettes)
            # Held while the payloads are written, as ingest does: a new image or a delete waits, or lands first
            # and the re-read below leaves the product alone.
            CatalogRepository(session, tenant_id).lock_products(ids)
            current = ColourRefreshRepository(session, tenant_id).image_urls(ids)
            images = {p.product_id: p.payload.get("image") or {} for p in index.retrieve(tenant_id, ids)}
            for pid in ids:
                image = images.get(pid)
                if current.get(pid) != urls[pid] or image is None or stored_palette(image) is not None:
                    continue
                index.set_payload(tenant_id, pid, {"image": _with_palette(image, palettes[pid])})

    def _palette_of(self, url: str) -> Palette:
        """Ingest's fetch and decode, with its retries of transient failures (timeouts, 5xx, 429)."""
        read = partial(fetch_catalogue_image, self.fetcher, self.settings.images, url)
        return colour_palette(self._walker.retrying(read).image)


class _Refresh(ProgressWalk[ProductRecord, dict[str, tuple[str, str]]]):
    """One run over one tenant: the pages' colours, their failures and the cursor in the refresh's tables."""

    what = "colour refresh"

    def __init__(self, refresher: ColourRefresher, tenant_id: str) -> None:
        self.refresher = refresher
        self.tenant_id = tenant_id

    def progress(self, session: Session) -> ColourRefreshRepository:
        return ColourRefreshRepository(session, self.tenant_id)

    def work(self, items: Sequence[ProductRecord]) -> dict[str, tuple[str, str]]:
        return self.refresher._refresh_page(self.tenant_id, items)

    def record(self, session: Session, cursor: str | None, items: Sequence[ProductRecord],
               worked: dict[str, tuple[str, str]]) -> bool:
        repo = self.progress(session)
        if not repo.advance(cursor, items[-1].id, len(items) - len(worked), len(worked)):
            return False
        # After the progress row, as every writer of both: no deadlock on PostgreSQL.
        repo.record_failures(worked)
        repo.clear_failures([p.id for p in items if p.id not in worked])
        return True

    def finish(self, session: Session) -> None:
        self.progress(session).finish()


def _with_palette(image: dict[str, Any], palette: Palette) -> dict[str, Any]:
    kept = {key: value for key, value in image.items() if key != "colour_hist"}
    return kept | {"colour_palette": palette_payload(palette)}
