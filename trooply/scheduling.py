"""A periodic job on a daemon thread, for the embedded shape (Celery beat does this in the others), and a thread
pool that bounds each tenant's share of heavy request work."""

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from trooply.errors import ServiceUnavailable, TrooplyError

log = logging.getLogger(__name__)
T = TypeVar("T")


class PeriodicTask:
    def __init__(self, interval_s: float, job: Callable[[], object], name: str) -> None:
        self._interval = interval_s
        self._job = job
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(30)

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._job()
            except Exception:  # the next round may succeed; a failing refresh must not end the thread
                log.exception("%s failed", self._thread.name)


class TenantSlots:
    """At most `per_tenant` of one tenant's heavy calls at once; one beyond is refused at once with a 429."""

    def __init__(self, per_tenant: int, what: str) -> None:
        self.per_tenant, self.what = per_tenant, what
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, tenant_id: str) -> None:
        with self._lock:
            if self._in_flight[tenant_id] >= self.per_tenant:
                raise TrooplyError(f"this account already has {self.what} running, the most it may have at once "
                                   f"({self.per_tenant}); retry when one has answered", code="too_many_requests",
                                   status=429,
                                   details={"retry_after": 1, "limit": self.per_tenant}, transient=True)
            self._in_flight[tenant_id] += 1

    def release(self, tenant_id: str) -> None:
        with self._lock:
            self._in_flight[tenant_id] -= 1
            if not self._in_flight[tenant_id]:
                del self._in_flight[tenant_id]

    @contextmanager
    def held(self, tenant_id: str) -> Iterator[None]:
        self.take(tenant_id)
        try:
            yield
        finally:
            self.release(tenant_id)


class TenantBoundedPool:
    """Heavy work on threads of its own, each tenant within its `TenantSlots` (queued or running), and no request
    thread held while a call waits for a thread. One tenant asking for more costs that tenant its slots, not
    everyone their searches."""

    def __init__(self, workers: int, per_tenant: int, name: str, what: str) -> None:
        self.slots = TenantSlots(per_tenant, what)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=name)

    def submit(self, tenant_id: str, work: Callable[[], T]) -> "Future[T]":
        self.slots.take(tenant_id)
        try:
            future = self._pool.submit(work)
        except RuntimeError as exc:  # the pool is shut down
            self.slots.release(tenant_id)
            raise ServiceUnavailable("shutting down", code="shutting_down") from exc
        # Released when the work ends, not when its caller gives up: a cancelled request's work still runs.
        future.add_done_callback(lambda _: self.slots.release(tenant_id))
        return future

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
