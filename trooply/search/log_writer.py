"""Writes search log rows off the request path, in batches (one SQL transaction per batch), and adds them to the
analytics counters in the same transaction."""

import logging
import queue
import threading

from trooply.analytics.counting import SearchFact, normalise_query, search_increments
from trooply.analytics.repository import AnalyticsRepository
from trooply.db import Database, utcnow
from trooply.search.models import SearchLog
from trooply.search.repository import SearchLogRepository
from trooply.search.schemas import SearchEnvelope

log = logging.getLogger(__name__)
_STOP = object()


class SearchLogWriter:
    def __init__(self, db: Database, max_batch: int = 500) -> None:
        self.db = db
        self.max_batch = max_batch
        self._rows: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def write(self, row: SearchLog) -> None:
        self._ensure_running()
        self._rows.put(row)

    def flush(self) -> None:
        """Blocks until every row handed over so far is committed."""
        if self._thread is not None:
            self._rows.join()

    def close(self) -> None:
        if self._thread is not None:
            self._rows.put(_STOP)
            self._thread.join(30)
            self._thread = None

    def _ensure_running(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, name="search-log", daemon=True)
                self._thread.start()

    def _drain(self) -> None:
        while True:
            batch = [self._rows.get()]
            while len(batch) < self.max_batch and not self._rows.empty():
                batch.append(self._rows.get())
            rows = [row for row in batch if row is not _STOP]
            try:
                if rows:
                    with self.db.session() as session:
                        for tenant_id, tenant_rows in _by_tenant(rows).items():
                            SearchLogRepository(session, tenant_id).add_all(tenant_rows)
                            AnalyticsRepository(session, tenant_id).add(search_increments(map(_fact, tenant_rows)))
            except Exception:  # a lost log row must never fail or slow a search
                log.exception("could not write %d search log rows", len(rows))
            finally:
                for _ in batch:
                    self._rows.task_done()
            if len(rows) < len(batch):
                return


def search_log(envelope: SearchEnvelope, tenant_id: str, query_text: str | None) -> SearchLog:
    """The row a search leaves: its ids, mode, profile and time; a text query only normalised, when kept at all."""
    return SearchLog(id=envelope.search_id, tenant_id=tenant_id, mode=envelope.mode, profile=envelope.profile,
                     product_ids=[r.id for r in envelope.results], took_ms=envelope.took_ms, created_at=utcnow(),
                     query=normalise_query(query_text))


def _fact(row: SearchLog) -> SearchFact:
    return SearchFact(row.created_at or utcnow(), row.mode, row.profile, len(row.product_ids), row.query)


def _by_tenant(rows: list[SearchLog]) -> dict[str, list[SearchLog]]:
    grouped: dict[str, list[SearchLog]] = {}
    for row in rows:
        grouped.setdefault(row.tenant_id, []).append(row)
    return grouped
