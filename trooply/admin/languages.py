"""Changing a tenant's language: the setting at once, then its indexed words re-tokenised in the background.

The tenant row holds the language wanted (`language`) and the one its indexed words are all in
(`words_language`); while they differ a re-tokenise is due. It runs as a background task (embedded: the queue's
thread; Celery: a worker), from the stored payloads, with no fetch and no encode, and the sweeps send it again
after a stop (the index skips the points already in the language). Searches answer throughout: until a product's
words are rewritten, a query tokenised in the new language may miss words whose stems differ.
"""

import logging
import time

from trooply.db import Database
from trooply.index.words import DEFAULT_LANGUAGE
from trooply.spaces.live import LiveSpaces
from trooply.tasks.names import RETOKENISE_TASK
from trooply.tasks.queue import Dispatcher
from trooply.tasks.send_once import SendOnce
from trooply.tenancy.languages import TenantLanguages
from trooply.tenancy.repository import TenantDirectory, TenantRepository
from trooply.tenancy.service import live_tenant

log = logging.getLogger(__name__)



class LanguageService:
    def __init__(self, db: Database, languages: TenantLanguages, dispatcher: Dispatcher | None,
                 spaces: LiveSpaces | None = None) -> None:
        self.db = db
        self.languages = languages
        # No dispatcher (the CLI beside a server): the server's sweep sends the re-tokenise.
        self._sends = SendOnce(dispatcher)
        self.spaces = spaces  # None in the CLI: it must not open an index a server may hold

    def set_language(self, tenant_id: str, language: str) -> None:
        """A language of trooply.index.words.LANGUAGES (the schema refuses others)."""
        with self.db.session() as session:
            tenant = live_tenant(TenantRepository(session, tenant_id), lock=True)
            tenant.language = language
            due = language != (tenant.words_language or DEFAULT_LANGUAGE)
        self.languages.forget(tenant_id)
        if due:
            self._send(tenant_id)

    def run(self, tenant_id: str) -> None:
        """RETOKENISE_TASK: the tenant's words in its language, then recorded as done unless it changed meanwhile
        (that change sent a task of its own)."""
        if self.spaces is None:
            raise RuntimeError("this process has no index to re-tokenise")
        try:
            self.languages.forget(tenant_id)
            wanted = self._wanted(tenant_id)
            if wanted is None:
                return  # deleted meanwhile
            rewritten = self.spaces.retokenise(tenant_id)
            # Other processes see the change within their cache time: a write of theirs tokenised in the old
            # language meanwhile is caught by a second pass (which skips what is done) before it is recorded.
            time.sleep(self.languages.cache_seconds)
            rewritten += self.spaces.retokenise(tenant_id)
            with self.db.session() as session:
                tenant = TenantRepository(session, tenant_id).lock()
                if tenant is not None and (tenant.language or DEFAULT_LANGUAGE) == wanted:
                    tenant.words_language = wanted
            log.info("re-tokenised %d products of tenant %s in %s", rewritten, tenant_id, wanted)
        finally:
            self._sends.ended(tenant_id)

    def resume(self) -> int:
        """Tenants whose words are not all in their language yet (a process stopped midway, or the CLI changed
        it): their re-tokenises are sent again."""
        with self.db.session() as session:
            due = TenantDirectory(session).languages_due()
        for tenant_id in due:
            self._send(tenant_id)
        return len(due)

    def _wanted(self, tenant_id: str) -> str | None:
        with self.db.session() as session:
            tenant = TenantRepository(session, tenant_id).get()
            if tenant is None or tenant.deleted_at is not None:
                return None
            return tenant.language or DEFAULT_LANGUAGE

    def _send(self, tenant_id: str) -> None:
        self._sends.send(tenant_id, RETOKENISE_TASK, [tenant_id])
