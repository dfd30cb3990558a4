"""The two queue shapes behind one interface: an in-process pool (embedded) and Celery on Redis.

Both carry (tenant, job, product ids) and run the same task code, `catalog.ingest.run_ingest_task`.
"""

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

log = logging.getLogger(__name__)
INGEST_TASK = "trooply.ingest_batch"


class Dispatcher(Protocol):
    def dispatch(self, tenant_id: str, job_id: str, product_ids: Sequence[str], delay: float = 0.0) -> None: ...

    def ping(self) -> None: ...

    def depth(self) -> int: ...


TaskRunner = Callable[[str, str, list[str]], object]  # what it returns is not used


class InProcessQueue:
    """A delay-aware queue drained by worker threads; SQL holds the truth, so losing it on exit is safe."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._heap: list[tuple[float, int, tuple[str, str, list[str]]]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._busy = 0

    def start(self, run: TaskRunner) -> None:
        self._stopping = False
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, args=(run,), name=f"ingest-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def dispatch(self, tenant_id: str, job_id: str, product_ids: Sequence[str], delay: float = 0.0) -> None:
        with self._ready:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order),
                                        (tenant_id, job_id, list(product_ids))))
            self._ready.notify()

    def ping(self) -> None:
        if not any(thread.is_alive() for thread in self._threads):
            raise RuntimeError("the ingest worker pool is not running")

    def depth(self) -> int:
        with self._ready:
            return len(self._heap) + self._busy

    def _work(self, run: TaskRunner) -> None:
        while True:
            task = self._next_due()
            if task is None:
                return
            try:
                run(*task)
            except Exception:  # a bug in one batch must not kill the pool; its items are resumed on restart
                log.exception("ingest batch failed")
            finally:
                with self._ready:
                    self._busy -= 1

    def _next_due(self) -> tuple[str, str, list[str]] | None:
        with self._ready:
            while not self._stopping:
                if self._heap and self._heap[0][0] <= time.monotonic():
                    self._busy += 1
                    return heapq.heappop(self._heap)[2]
                timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                self._ready.wait(timeout)
            return None


class CeleryDispatcher:
    """Sends ingest tasks by name, so the API process needs no worker code or models."""

    def __init__(self, broker_url: str) -> None:
        from celery import Celery

        self.app = Celery("trooply-client", broker=broker_url)

    def dispatch(self, tenant_id: str, job_id: str, product_ids: Sequence[str], delay: float = 0.0) -> None:
        self.app.send_task(INGEST_TASK, args=[tenant_id, job_id, list(product_ids)], countdown=delay or None)

    def send(self, task: str, args: list[str]) -> None:
        """Any other task by name (a duplicate scan, …)."""
        self.app.send_task(task, args=args)

    def ping(self) -> None:
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)

    def depth(self) -> int:
        """Messages waiting in Celery's default queue (delayed retries wait elsewhere and are not counted)."""
        with self.app.connection_for_read() as connection:
            return connection.default_channel.queue_declare("celery", passive=True).message_count
