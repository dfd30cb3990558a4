"""Each tenant's language: the one its products' words are tokenised in, when they are written and when a
query is, so that both sides give the same tokens (trooply.index.words)."""

import time
from collections.abc import Callable

from trooply.db import Database
from trooply.index.words import DEFAULT_LANGUAGE
from trooply.tenancy.repository import TenantRepository


class TenantLanguages:
    """tenant id ▸ language, read from SQL and remembered briefly: a read per search or per write is measurable
    latency. Another process sees a change within `cache_seconds` (this one at once: `forget`)."""

    def __init__(self, db: Database, cache_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._known: dict[str, tuple[float, str]] = {}

    def __call__(self, tenant_id: str) -> str:
        known = self._known.get(tenant_id)
        if known is not None and known[0] > self._clock():
            return known[1]
        with self.db.session() as session:
            tenant = TenantRepository(session, tenant_id).get()
            language = (tenant.language if tenant is not None else None) or DEFAULT_LANGUAGE
        self._known[tenant_id] = (self._clock() + self.cache_seconds, language)
        return language

    def forget(self, tenant_id: str) -> None:
        self._known.pop(tenant_id, None)
