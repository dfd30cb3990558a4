"""Recomputing one tenant's stored colour signal: the colour refresh's background task.

Products are paged in id order after the tenant's persisted cursor. A product whose payload already holds a
palette costs nothing; the others have their image fetched and decoded again with ingest's rules (safe fetch,
pixel caps, retries of transient failures), and only the colour is computed: no CLIP encode, the vector stays.
The palette is written under the products' locks, only while the product still has that image and no palette
(ingest may have written a newer one meanwhile), and the cursor and counts of a page land after its writes, so a
killed process resumes at the first page it had not recorded, and a page done twice finds its palettes there.
Searches answer throughout: a product not yet recomputed has a neutral colour signal.
"""

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from trooply.catalog.models import ProductRecord
from trooply.catalog.repository import CatalogRepository
from trooply.colour_refresh.models import DONE, RUNNING
from trooply.colour_refresh.repository import ColourRefreshRepository
from trooply.config import Settings
from trooply.db import Database
from trooply.errors import TrooplyError
from trooply.index.base import VectorIndex
from trooply.vision.colour import Palette, colour_palette, palette_payload, stored_palette
from trooply.vision.decode import decode_image
from trooply.vision.fetch import ImageFetcher

log = logging.getLogger(__name__)
PAGE_SIZE = 32


class ColourRefresher:
    def __init__(self, db: Database, index: Callable[[], VectorIndex], fetcher: ImageFetcher, settings: Settings,
                 page_size: int = PAGE_SIZE) -> None:
        self.db = db
        self.page_size = page_size
        self._index = index  # opened on first use
        self.fetcher = fetcher
        self.settings = settings
        self._pool = ThreadPoolExecutor(settings.ingest.fetch_concurrency, thread_name_prefix="colour-fetch")
        self._stopping = False

    def close(self) -> None:
        """Stops between two pages: the tenant stays unfinished and is resumed at the next start."""
        self._stopping = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def run(self, tenant_id: str) -> bool:
        """Brings the tenant's stored colours up to date; True when it finished."""
        with self.db.session() as session:
            repo = ColourRefreshRepository(session, tenant_id)
            progress = repo.get()
            if progress is None or progress.status == DONE:
                return False
            repo.set_status(RUNNING)
            cursor = progress.cursor
        while not self._stopping:
            with self.db.session() as session:
                products = ColourRefreshRepository(session, tenant_id).indexed_after(cursor, self.page_size)
            if not products:
                with self.db.session() as session:
                    ColourRefreshRepository(session, tenant_id).finish()
                return True
            failed = self._refresh_page(tenant_id, products)
            if self._stopping:
                return False  # cut short: the page is done again at the next start
            with self.db.session() as session:
                repo = ColourRefreshRepository(session, tenant_id)
                if not repo.advance(cursor, products[-1].id, len(products) - len(failed), len(failed)):
                    log.info("tenant %s: its colour refresh was restarted or moved on by another run; this run "
                             "stops", tenant_id)
                    return False
                # After the progress row, as every writer of both: no deadlock on PostgreSQL.
                repo.record_failures(failed)
                repo.clear_failures([p.id for p in products if p.id not in failed])
            cursor = products[-1].id
        return False

    def _refresh_page(self, tenant_id: str, products: Sequence[ProductRecord]) -> dict[str, tuple[str, str]]:
        """Recomputes the page's stale colours; returns the products that failed (their images), each with its
        error code and message."""
        stored = {p.product_id: p.payload for p in self._index().retrieve(tenant_id, [p.id for p in products])}
        stale = {p.id: p.image_url for p in products
                 if p.id in stored and stored_palette(stored[p.id].get("image") or {}) is None}
        if not stale:
            return {}
        futures = {pid: self._pool.submit(self._palette_of, url) for pid, url in stale.items()}
        palettes: dict[str, Palette] = {}
        failed: dict[str, tuple[str, str]] = {}
        for pid, future in futures.items():
            try:
                palettes[pid] = future.result()
            except TrooplyError as error:
                failed[pid] = (error.code, error.message)
                log.info("colour refresh: product %r of tenant %s kept its old colour (%s)", pid, tenant_id,
                         error.code)
            except Exception:  # one product's bug fails that product alone
                failed[pid] = ("internal_error", "the colour could not be computed")
                log.exception("colour refresh: product %r failed unexpectedly", pid)
        if palettes and not self._stopping:
            self._write(tenant_id, stale, palettes)
        return failed

    def _write(self, tenant_id: str, urls: dict[str, str], palettes: dict[str, Palette]) -> None:
        index = self._index()
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
        attempt = 1
        while True:
            try:
                fetched = self.fetcher.fetch(url)
                decoded = decode_image(fetched.data, self.settings.images.max_pixels,
                                       self.settings.images.decode_max_side,
                                       self.settings.images.max_concurrent_large_decodes)
                return colour_palette(decoded.image)
            except TrooplyError as error:
                if not error.transient or attempt >= self.settings.ingest.max_attempts or self._stopping:
                    raise
            time.sleep(self.settings.ingest.retry_base_delay * 2 ** (attempt - 1))
            attempt += 1


def _with_palette(image: dict[str, Any], palette: Palette) -> dict[str, Any]:
    kept = {key: value for key, value in image.items() if key != "colour_hist"}
    return kept | {"colour_palette": palette_payload(palette)}
