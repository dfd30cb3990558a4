"""One resumable walk over a tenant's products, a page at a time: the loop of the long background tasks that
redo something for every product of a tenant (the colour refresh, the model migration's re-encode).

The walk reads a page after the cursor the task's progress row holds, works on it outside any transaction
(fetches, decodes, encodes, on the walker's threads), then records it in one transaction: the page's writes, its
failures, and the cursor moved past it only from where this run read it. So a killed process resumes at the first
page it had not recorded, a page done twice does the same work again, and a second run of the same tenant (or
one whose progress was restarted or aborted meanwhile) stops at its first record. `stop()` ends every walk
between two pages; the page under way is dropped, not recorded, and done again at the next start.

The task says what each step means (`TenantWalk`); the walker owns the order, the transactions, the stop and
the isolation of one product's failure from the rest of its page. The re-tokenise of a tenant's words is not a
walk of this kind: it pages the index's own points under the tenant's write lock, and a point already in the
language is its progress (`index/tiers.py:TieredIndex.retokenise`).
"""

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, cast

from sqlalchemy.orm import Session

from trooply.db import Database
from trooply.errors import TrooplyError

log = logging.getLogger(__name__)


class Keyed(Protocol):
    """A product as the walk pages it: the cursor is the id of the last one recorded."""

    @property
    def id(self) -> str: ...


Item = TypeVar("Item")  # a `Keyed` (SQLAlchemy's mapped `id` is not a protocol member to mypy)
Worked = TypeVar("Worked")
Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")
Paged = TypeVar("Paged", covariant=True)


# A walk's progress row: pending until a run starts, running while its pages are walked, done after the last.
PENDING, RUNNING, DONE = "pending", "running", "done"


@dataclass(frozen=True)
class Resume:
    cursor: str | None  # the last product recorded; None: from the first


class ProgressRow(Protocol):
    status: str
    cursor: str | None


class ProgressRepository(Protocol[Paged]):
    """One tenant's progress row and its products in id order, as a task's repository keeps them."""

    def get(self) -> ProgressRow | None: ...

    def set_status(self, status: str) -> None: ...

    def indexed_after(self, cursor: str | None, limit: int) -> Sequence[Paged]: ...


class TenantWalk(ABC, Generic[Item, Worked]):
    """What one run of a task does at each step of its walk over one tenant."""

    what = "walk"  # the task, as the log names it

    @abstractmethod
    def begin(self, session: Session) -> Resume | None:
        """Marks the tenant's work running and says where to resume; None when none is due (never begun, or
        done)."""

    def cursor_of(self, item: Item) -> str:
        """The cursor once this product is recorded: its id."""
        return cast(Keyed, item).id

    def before_pages(self) -> None:
        """What the run does once before its first page, outside any transaction."""

    @abstractmethod
    def page_after(self, session: Session, cursor: str | None, limit: int) -> Sequence[Item]:
        """The next products in id order, after `cursor` (from the first with None)."""

    @abstractmethod
    def work(self, items: Sequence[Item]) -> Worked:
        """The page's work, outside any transaction; each product's failure is part of what it returns."""

    @abstractmethod
    def record(self, session: Session, cursor: str | None, items: Sequence[Item], worked: Worked) -> bool:
        """The page's writes, its failures, and the progress moved past `items[-1]` only if it is still at
        `cursor`: False when another run, a restart or an abort moved it, and nothing of the page must land."""

    @abstractmethod
    def finish(self, session: Session) -> None:
        """Every page is recorded: marks the tenant's work done."""


class ProgressWalk(TenantWalk[Item, Worked]):
    """A walk whose progress is one row per tenant (`status`, `cursor`) beside its products, behind the task's
    repository: it begins and pages the same way for every such task."""

    @abstractmethod
    def progress(self, session: Session) -> ProgressRepository[Item]:
        """The task's repository for this tenant, in this session."""

    def begin(self, session: Session) -> Resume | None:
        repo = self.progress(session)
        row = repo.get()
        if row is None or row.status == DONE:
            return None
        repo.set_status(RUNNING)
        return Resume(row.cursor)

    def page_after(self, session: Session, cursor: str | None, limit: int) -> Sequence[Item]:
        return self.progress(session).indexed_after(cursor, limit)


class TenantWalker:
    """Runs `TenantWalk`s, with a pool of `workers` threads for the pages' per-product work."""

    def __init__(self, db: Database, workers: int, thread_name: str, max_attempts: int,
                 retry_base_delay: float) -> None:
        self.db = db
        self.thread_name = thread_name
        self.max_attempts = max_attempts
        self.retry_base_delay = retry_base_delay
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=thread_name)
        self._stop = threading.Event()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Every walk stops between two pages: its tenant stays unfinished and is resumed at the next start."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def walk(self, tenant_id: str, steps: TenantWalk[Item, Worked], page_size: int) -> bool:
        """Walks the tenant's products from where its progress stands; True when it finished."""
        with self.db.session() as session:
            resume = steps.begin(session)
        if resume is None:
            return False
        steps.before_pages()
        cursor = resume.cursor
        while not self.stopping:
            with self.db.session() as session:
                items = steps.page_after(session, cursor, page_size)
            if not items:
                with self.db.session() as session:
                    steps.finish(session)
                return True
            worked = steps.work(items)
            if self.stopping:
                return False  # the page was cut short: done again at the next start, its failures not recorded
            with self.db.session() as session:
                if not steps.record(session, cursor, items, worked):
                    session.rollback()
                    log.info("tenant %s: its %s was restarted, aborted or moved on by another run; this run stops",
                             tenant_id, steps.what)
                    return False
            cursor = steps.cursor_of(items[-1])
        return False

    def each(self, calls: Mapping[Key, Callable[[], Value]]) -> tuple[dict[Key, Value], dict[Key, TrooplyError]]:
        """Runs the calls on the pool; returns what each gave, and each one's failure apart. A `TrooplyError`
        is the key's failure as raised; any other exception is a bug that fails that key alone (internal_error,
        logged with its traceback)."""
        futures = {key: self._pool.submit(call) for key, call in calls.items()}
        done: dict[Key, Value] = {}
        failed: dict[Key, TrooplyError] = {}
        for key, future in futures.items():
            try:
                done[key] = future.result()
            except TrooplyError as error:
                failed[key] = error
            except Exception as error:
                log.exception("%s: %r failed unexpectedly", self.thread_name, key)
                failed[key] = TrooplyError(f"unexpected error ({type(error).__name__})", code="internal_error")
        return done, failed

    def retrying(self, call: Callable[[], Value]) -> Value:
        """The call, tried again after a transient failure (a timeout, a 5xx, a 429) with ingest's backoff, at
        most `max_attempts` times in all, and not once the walker stops."""
        attempt = 1
        while True:
            try:
                return call()
            except TrooplyError as error:
                if not error.transient or attempt >= self.max_attempts or self.stopping:
                    raise
            time.sleep(self.retry_base_delay * 2 ** (attempt - 1))
            attempt += 1
