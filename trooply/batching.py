"""Dynamic micro-batching: concurrent callers' items coalesced into one forward pass on one thread.

Storefront queries go before ingest: a batch holds items of one priority only, and the waiting query
items are always taken first, so a query waits at most for the pass already running. A query that would
wait longer than the budget is refused at once (503 `overloaded`, with Retry-After) instead of joining a
queue whose latency grows without bound; ingest is never refused, only delayed.
"""

import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from trooply.errors import ServiceUnavailable
from trooply.observability import RUNTIME_BATCH_SIZE, RUNTIME_QUEUE_DEPTH, RUNTIME_SHED

log = logging.getLogger(__name__)

# Priorities: storefront queries, then ingest and other background work (prompt embeddings at start).
QUERY, INGEST = 0, 1
Item = TypeVar("Item")
Result = TypeVar("Result")


class Overloaded(ServiceUnavailable):
    code = "overloaded"


@dataclass(order=True)
class _Pending:
    priority: int
    order: int
    item: Any = field(compare=False)
    future: Future = field(compare=False)
    enqueued_at: float = field(compare=False, default_factory=time.monotonic)
    found_idle: bool = field(compare=False, default=False)  # nothing queued or running when it arrived


@dataclass(frozen=True)
class BatchPolicy:
    max_batch: int = 16
    # Ingest passes may be kept smaller: a query waits at most for the pass already running (slow CPU models).
    max_ingest_batch: int | None = None  # max_batch when unset
    max_wait_s: float = 0.003  # how long the first item of a batch waits for company
    max_queue: int = 256  # query items waiting, beyond which queries are refused
    wait_budget_s: float = 5.0  # expected wait beyond which a query is refused
    query_timeout_s: float = 30.0  # a query's items still waiting then are withdrawn (503)


class MicroBatcher(Generic[Item, Result]):
    """`run_batch(items) -> results` (same length, same order) runs on this batcher's one thread."""

    def __init__(self, model: str, kind: str, run_batch: Callable[[list[Item]], Sequence[Result]],
                 policy: BatchPolicy) -> None:
        self.model, self.kind, self.policy = model, kind, policy
        self._run_batch = run_batch
        self._heap: list[_Pending] = []
        self._queued = [0, 0]  # per priority
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._stopping = False
        self._running_until = 0.0  # when the pass in progress is expected to end
        self._pass_seconds = [0.0, 0.0]  # moving average of one pass, per priority
        self._busy = False  # a pass is running
        self._thread = threading.Thread(target=self._serve, name=f"batcher-{model}-{kind}", daemon=True)
        self._thread.start()

    def map(self, items: Sequence[Item], priority: int = QUERY) -> list[Result]:
        """Each item's result, in order; raises the error of the first item that failed. A query whose items
        are not done within the policy's timeout withdraws those still waiting, which no pass then runs."""
        futures = self.submit(items, priority)
        deadline = time.monotonic() + self.policy.query_timeout_s if priority == QUERY else None
        try:
            return [future.result(None if deadline is None else max(0.0, deadline - time.monotonic()))
                    for future in futures]
        except FutureTimeout:
            for future in futures:
                future.cancel()
            raise ServiceUnavailable(f"the {self.model} model did not answer within "
                                     f"{self.policy.query_timeout_s:g} s", code="model_timeout",
                                     details={"retry_after": 1}) from None

    def submit(self, items: Sequence[Item], priority: int = QUERY) -> list[Future]:
        with self._ready:
            if self._stopping:
                raise ServiceUnavailable(f"the {self.model} model is shutting down", code="shutting_down")
            if priority == QUERY:
                self._admit(len(items))
            idle = not self._heap and not self._busy
            futures = []
            for item in items:
                pending = _Pending(priority, next(self._order), item, Future(), time.monotonic(), idle)
                heapq.heappush(self._heap, pending)
                futures.append(pending.future)
            self._queued[priority] += len(items)
            RUNTIME_QUEUE_DEPTH.labels(self.model, self.kind).set(len(self._heap))
            self._ready.notify()
        return futures

    def expected_wait(self, extra_items: int = 1) -> float:
        """Seconds new query items would wait before their own pass starts: the rest of the pass running, then
        the query passes ahead of them. A lone query on an idle model waits nothing, however slow the model."""
        passes_ahead = math.ceil((self._queued[QUERY] + extra_items) / self.policy.max_batch) - 1
        running = max(0.0, self._running_until - time.monotonic())
        return running + passes_ahead * self._pass_seconds[QUERY]

    def _admit(self, count: int) -> None:
        wait = self.expected_wait(count)
        if self._queued[QUERY] + count > self.policy.max_queue or wait > self.policy.wait_budget_s:
            RUNTIME_SHED.labels(self.model).inc()
            raise Overloaded(f"the {self.model} model is saturated (expected wait {wait:.1f} s); retry shortly",
                             details={"retry_after": max(1, math.ceil(wait))})

    def stop(self, timeout: float = 30.0) -> None:
        """Refuses new work, finishes what is queued, then ends the thread."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        self._thread.join(timeout)

    def _serve(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)
            with self._ready:
                self._busy = False

    def _next_batch(self) -> list[_Pending] | None:
        with self._ready:
            while not self._heap:
                if self._stopping:
                    return None
                self._ready.wait()
            # A lone item that found the model idle goes at once: a single shopper never pays max_wait. Under
            # traffic items gather while a pass runs, and the next waits a few milliseconds for company.
            first = self._heap[0]
            alone = first.found_idle and len(self._heap) == 1
            deadline = first.enqueued_at + (0.0 if alone else self.policy.max_wait_s)
            while len(self._heap) < self.policy.max_batch and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            priority = self._heap[0].priority  # the best waiting: queries before ingest
            limit = self.policy.max_batch
            if priority == INGEST and self.policy.max_ingest_batch is not None:
                limit = self.policy.max_ingest_batch
            batch: list[_Pending] = []
            while self._heap and len(batch) < limit and self._heap[0].priority == priority:
                batch.append(heapq.heappop(self._heap))
            self._queued[priority] -= len(batch)
            self._busy = True
            self._running_until = time.monotonic() + self._pass_seconds[priority]
            RUNTIME_QUEUE_DEPTH.labels(self.model, self.kind).set(len(self._heap))
        return batch

    def _run(self, batch: list[_Pending]) -> None:
        started = time.monotonic()
        live = [p for p in batch if p.future.set_running_or_notify_cancel()]  # withdrawn ones are skipped
        if not live:
            return
        try:
            results = self._run_batch([p.item for p in live])
        except Exception:
            # One bad item must not fail its batch-mates: run each alone to find out whose error it is.
            log.warning("a %s %s batch of %d failed; running its items one by one", self.model, self.kind,
                        len(live), exc_info=True)
            for pending in live:
                self._run_alone(pending)
        else:
            for pending, result in zip(live, results, strict=True):
                pending.future.set_result(result)
        elapsed, priority = time.monotonic() - started, batch[0].priority
        RUNTIME_BATCH_SIZE.labels(self.model, self.kind).observe(len(live))
        average = self._pass_seconds[priority]
        self._pass_seconds[priority] = elapsed if not average else 0.8 * average + 0.2 * elapsed

    def _run_alone(self, pending: _Pending) -> None:
        try:
            pending.future.set_result(self._run_batch([pending.item])[0])
        except Exception as error:
            pending.future.set_exception(error)
