"""Query image URLs fetched on threads of their own, so a slow image host cannot starve other requests.

Request threads only wait on a future (async callers not even that), and one tenant holds at most a few
fetch threads: a shopper pointing searches at a host that sends a byte a second costs that tenant its
slots, not everyone their text search.
"""

import asyncio
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor

from trooply.config import Settings
from trooply.errors import ServiceUnavailable, TrooplyError
from trooply.vision.fetch import ImageFetcher

THREAD_PREFIX = "query-fetch"


class QueryImageFetcher:
    def __init__(self, fetcher: ImageFetcher, *, concurrency: int, per_tenant: int) -> None:
        self.fetcher = fetcher
        self.per_tenant = per_tenant
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix=THREAD_PREFIX)
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> "QueryImageFetcher":
        return cls(ImageFetcher.from_settings(settings), concurrency=settings.fetch.query_concurrency,
                   per_tenant=settings.fetch.query_per_tenant)

    async def fetch(self, tenant_id: str, url: str) -> bytes:
        """The image's bytes; the event loop awaits the fetch thread, no request thread is held."""
        return await asyncio.wrap_future(self._submit(tenant_id, url))

    def fetch_sync(self, tenant_id: str, url: str) -> bytes:
        """For callers already on a worker thread (multi-image search, evaluation)."""
        return self._submit(tenant_id, url).result()

    def close(self) -> None:
        # Queued fetches are dropped; running ones end within their deadline, before the client closes.
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.fetcher.close()

    def _submit(self, tenant_id: str, url: str) -> Future[bytes]:
        self._take_slot(tenant_id)
        try:
            future = self._pool.submit(lambda: self.fetcher.fetch(url).data)
        except RuntimeError as exc:  # the pool is shut down
            self._release(tenant_id)
            raise ServiceUnavailable("shutting down", code="shutting_down") from exc
        # Released when the fetch ends, not when its caller gives up: a cancelled request's fetch still runs.
        future.add_done_callback(lambda _: self._release(tenant_id))
        return future

    def _take_slot(self, tenant_id: str) -> None:
        with self._lock:
            if self._in_flight[tenant_id] >= self.per_tenant:
                raise TrooplyError(f"{self.per_tenant} image URLs are already being fetched for this account",
                                   code="too_many_fetches", status=429, details={"retry_after": 1},
                                   transient=True)
            self._in_flight[tenant_id] += 1

    def _release(self, tenant_id: str) -> None:
        with self._lock:
            self._in_flight[tenant_id] -= 1
            if not self._in_flight[tenant_id]:
                del self._in_flight[tenant_id]
