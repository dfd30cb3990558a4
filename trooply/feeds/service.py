"""Catalogue feeds kept in sync: register a feed's URL, and each sync (on demand, hourly or daily) downloads it
under the image address rule (conditionally: an unchanged feed is a no-op), diffs it against the catalogue and
reports what it did. One sync per feed at a time; syncs are a background task, resumed after a restart."""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from trooply.catalog.service import CatalogService
from trooply.config import Settings
from trooply.db import Database, utcnow
from trooply.errors import Conflict, NotFound, TrooplyError
from trooply.feeds.download import Download, FeedDownloader
from trooply.feeds.models import (
    COMPLETED,
    FAILED,
    MANUAL,
    PENDING,
    SCHEDULE_SECONDS,
    Feed,
    FeedSync,
)
from trooply.feeds.repository import FeedMaintenance, FeedRepository
from trooply.feeds.schemas import FeedIn, FeedList, FeedOut, FeedPatch, FeedSyncOut, SyncCounts
from trooply.feeds.sync import FAILED_COUNT, CatalogueDiff, FeedDeleted, SyncInterrupted, SyncTally, read_feed

log = logging.getLogger(__name__)
KEEP_SYNCS = 20  # finished syncs kept per feed
SHOWN_SYNCS = 5  # in GET /v1/feeds/{id}
STALE_MARGIN_S = 300.0
# A sync that finds its account's import (or another of its syncs) running waits this long and tries again.
DEFER_S = 30.0


class SendSync(Protocol):
    def __call__(self, tenant_id: str, sync_id: str, delay: float = 0.0) -> None: ...


class _AccountBusy(Exception):
    """Another sync of the account runs (perhaps in another worker process): this one waits its turn."""


@dataclass(frozen=True)
class _Run:
    """One run of a sync: the feed as it was when the run took the sync."""

    tenant_id: str
    sync_id: str
    feed_id: str
    number: int
    url: str
    format: str
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    delete_missing: bool
    began: float

    def elapsed(self) -> float:
        return round(time.monotonic() - self.began, 3)


class FeedService:
    def __init__(self, db: Database, catalog: CatalogService, downloader: FeedDownloader, settings: Settings,
                 dispatch: SendSync) -> None:
        self.db = db
        self.catalog = catalog
        self.downloader = downloader
        self.settings = settings
        self._dispatch = dispatch  # queues a sync's task (after a delay), which calls run_sync
        self._stopping = False
        self.defer_s = DEFER_S

    def create(self, tenant_id: str, feed: FeedIn) -> FeedOut:
        """Registers the feed and starts its first sync."""
        with self.db.session() as session:
            repo = FeedRepository(session, tenant_id)
            most = self.settings.feeds.max_per_tenant
            if repo.count() >= most:
                raise Conflict(f"a tenant has at most {most} feeds (TROOPLY_FEEDS_PER_TENANT)",
                               code="too_many_feeds", details={"max_feeds": most})
            row = Feed(id=f"feed_{uuid.uuid4().hex[:20]}", url=feed.url, format=feed.format, schedule=feed.schedule,
                       delete_missing=feed.delete_missing, syncs_started=0)
            repo.add(row)
        self.start_sync(tenant_id, row.id, "created")
        return self.get(tenant_id, row.id)

    def list(self, tenant_id: str) -> FeedList:
        with self.db.session() as session:
            repo = FeedRepository(session, tenant_id)
            return FeedList(feeds=[self._out(repo, feed, 1) for feed in repo.all_feeds()])

    def get(self, tenant_id: str, feed_id: str) -> FeedOut:
        with self.db.session() as session:
            repo = FeedRepository(session, tenant_id)
            return self._out(repo, _found(repo.get(feed_id), feed_id), SHOWN_SYNCS)

    def patch(self, tenant_id: str, feed_id: str, patch: FeedPatch) -> FeedOut:
        changes = patch.model_dump(exclude_none=True)
        with self.db.session() as session:
            repo = FeedRepository(session, tenant_id)
            feed = _found(repo.get(feed_id), feed_id)
            for name, value in changes.items():
                setattr(feed, name, value)
            if changes.keys() & {"url", "format", "delete_missing"}:
                # What the next sync reads or does differs: it runs in full, whatever the feed's validators say.
                feed.etag = feed.last_modified = feed.content_hash = None
            if "schedule" in changes:
                feed.next_sync_at = _next_sync(feed.schedule, utcnow())
            return self._out(repo, feed, SHOWN_SYNCS)

    def delete(self, tenant_id: str, feed_id: str) -> None:
        """The feed and its reports; its products stay in the catalogue."""
        with self.db.session() as session:
            if not FeedRepository(session, tenant_id).delete(feed_id):
                raise NotFound(f"no feed {feed_id!r}", code="feed_not_found")

    def start_sync(self, tenant_id: str, feed_id: str, trigger: str = "manual") -> FeedSyncOut:
        """Queues a sync, or answers the one already queued or running."""
        with self.db.session() as session:
            repo = FeedRepository(session, tenant_id)
            feed = _found(repo.get(feed_id), feed_id)
            sync_id = f"fsync_{uuid.uuid4().hex[:20]}"
            if not repo.claim(feed_id, sync_id):
                session.refresh(feed)
                running = repo.get_sync(feed.active_sync_id or "")
                if running is not None:
                    return self._sync_out(repo, running)
                raise Conflict("the feed's sync is just finishing; try again", code="feed_sync_busy")
            sync = FeedSync(id=sync_id, feed_id=feed_id, number=0, trigger=trigger, status=PENDING, counts={},
                            failed_by_code={}, rejected=[], jobs=[], bytes=0)
            repo.add(sync)
            session.flush()
            out = self._sync_out(repo, sync)
        self._dispatch(tenant_id, sync_id)
        return out

    def sync_due(self) -> int:
        """Queues a sync of every scheduled feed that is due (the embedded thread, or `trooply beat`)."""
        with self.db.session() as session:
            due = FeedMaintenance(session).due_feeds(utcnow())
        started = 0
        for tenant_id, feed_id in due:
            try:
                self.start_sync(tenant_id, feed_id, "schedule")
                started += 1
            except NotFound:
                continue  # deleted since
        return started

    def resume_unfinished(self, stale_only: bool = False) -> int:
        """Sends unfinished syncs again. Embedded, at start: every one (no run outlived the last process). With
        Celery, periodically: those queued or silent for longer than a run can be (`stale_only`), whose message
        was lost; a run still alive keeps its sync (`take_sync`)."""
        with self.db.session() as session:
            maintenance = FeedMaintenance(session)
            if not stale_only:
                maintenance.requeue_running()
            unfinished = maintenance.unfinished_syncs(utcnow() - self._stale_after() if stale_only else None)
        for tenant_id, sync_id in unfinished:
            self._dispatch(tenant_id, sync_id)
        return len(unfinished)

    def _stale_after(self) -> timedelta:
        # A download sends no heartbeat: silent for its whole deadline, and then some, is gone.
        return timedelta(seconds=self.settings.feeds.fetch_deadline + STALE_MARGIN_S)

    def close(self) -> None:
        """A running sync stops between two batches; it runs again at the next start."""
        self._stopping = True
        self.downloader.close()

    def check_not_syncing(self, tenant_id: str) -> None:
        """Refuses an import (429, as a second import is) while a sync of the account runs: in the Celery shape the
        sync runs in a worker process, where the import slot of this process cannot see it."""
        with self.db.session() as session:
            running = FeedRepository(session, tenant_id).sync_running(utcnow() - self._stale_after())
        if running:
            raise TrooplyError("a feed sync of this account is running, and an account imports one file or feed at a "
                               "time; retry when it has finished", code="too_many_requests", status=429,
                               details={"retry_after": int(self.defer_s), "limit": 1}, transient=True)

    def run_sync(self, tenant_id: str, sync_id: str) -> None:
        """The background task: idempotent (a resumed sync runs again from the start; the diff skips what the
        first run did). It holds the account's import slot: an import and a sync of one account never run at
        once, and a sync that finds the slot taken waits and tries again."""
        try:
            self.catalog.imports.take(tenant_id)
        except TrooplyError:
            self._defer(tenant_id, sync_id, "an import of the account is running")
            return
        try:
            self._run_sync(tenant_id, sync_id)
        finally:
            self.catalog.imports.release(tenant_id)

    def _defer(self, tenant_id: str, sync_id: str, why: str) -> None:
        with self.db.session() as session:
            repo = FeedRepository(session, tenant_id)
            sync = repo.get_sync(sync_id)
            if sync is None or sync.status != PENDING:
                return  # finished, gone, or running elsewhere
            repo.update_sync(sync_id, note=f"waiting: {why}; the sync starts when it has finished")
        self._dispatch(tenant_id, sync_id, self.defer_s)

    def _run_sync(self, tenant_id: str, sync_id: str) -> None:
        try:
            run = self._take(tenant_id, sync_id)
        except _AccountBusy:
            self._defer(tenant_id, sync_id, "another feed sync of the account is running")
            return
        if run is None:
            return  # finished, gone, or running elsewhere
        try:
            self._sync(run)
        except SyncInterrupted:
            log.info("feed sync %s interrupted by shutdown; it runs again at the next start", sync_id)
        except FeedDeleted:
            log.info("feed %s was deleted during its sync %s, which stopped", run.feed_id, sync_id)
        except Exception as error:
            if self._stopping:  # the download was cut by the shutdown: not the feed's failure
                log.info("feed sync %s stopped by shutdown; it runs again at the next start", sync_id)
                return
            if not isinstance(error, TrooplyError):
                log.exception("feed sync %s of tenant %s failed", sync_id, tenant_id)
            failure = ({"code": error.code, "message": error.message} if isinstance(error, TrooplyError) else
                       {"code": "internal_error", "message": "an unexpected error; it has been logged"})
            self._fail(run, failure)

    def _take(self, tenant_id: str, sync_id: str) -> _Run | None:
        with self.db.session() as session:
            repo = FeedRepository(session, tenant_id)
            if not repo.take_sync(sync_id, utcnow() - self._stale_after()):
                sync = repo.get_sync(sync_id)
                if sync is not None and sync.status == PENDING:
                    raise _AccountBusy
                return None
            sync = repo.get_sync(sync_id)
            feed = repo.get(sync.feed_id) if sync is not None else None
            if sync is None or feed is None:
                return None
            feed.syncs_started += 1  # this run's number marks the products it sees
            sync.number = feed.syncs_started
            return _Run(tenant_id, sync_id, feed.id, sync.number, feed.url, feed.format, feed.etag,
                        feed.last_modified, feed.content_hash, feed.delete_missing, time.monotonic())

    def _sync(self, run: _Run) -> None:
        download = self.downloader.download(run.url, run.etag, run.last_modified)
        if download.file is None:
            self._finish(run, SyncTally(), download, not_modified=True, note="the feed answered 304 Not Modified")
            return
        with download.file:
            if download.sha256 == run.content_hash:
                self._finish(run, SyncTally(), download, not_modified=True,
                             note="the feed's bytes are those of the last sync")
                return
            diff = CatalogueDiff(self.db, self.catalog, run.tenant_id, run.feed_id, run.number,
                                 lambda tally: self._progress(run, tally), lambda: self._stopping)
            held_before = diff.held()
            tally = diff.apply(read_feed(download.file, run.format))
        note = None
        if run.delete_missing and tally.valid_items:
            note = diff.delete_missing(held_before, self.settings.feeds.max_delete_share)
        elif run.delete_missing:
            note = "no product was read from the feed: nothing was deleted"
        self._finish(run, tally, download, note=note)

    def _progress(self, run: _Run, tally: SyncTally) -> None:
        with self.db.session() as session:
            FeedRepository(session, run.tenant_id).update_sync(run.sync_id, counts=dict(tally.counts),
                                                               heartbeat_at=utcnow())

    def _finish(self, run: _Run, tally: SyncTally, download: Download, *, not_modified: bool = False,
                note: str | None = None) -> None:
        now = utcnow()
        with self.db.session() as session:
            repo = FeedRepository(session, run.tenant_id)
            repo.update_sync(run.sync_id, status=COMPLETED, not_modified=not_modified, counts=dict(tally.counts),
                             failed_by_code=dict(tally.failed_by_code), rejected=tally.rejected, jobs=tally.jobs,
                             bytes=download.size, duration_s=run.elapsed(), note=note, finished_at=now)
            feed = repo.get(run.feed_id)
            repo.release(run.feed_id, run.sync_id, etag=download.etag, last_modified=download.last_modified,
                         content_hash=download.sha256 or run.content_hash,
                         next_sync_at=_next_sync(feed.schedule, now) if feed is not None else None)
            repo.prune_syncs(run.feed_id, KEEP_SYNCS)

    def _fail(self, run: _Run, error: dict[str, Any]) -> None:
        now = utcnow()
        with self.db.session() as session:
            repo = FeedRepository(session, run.tenant_id)
            repo.update_sync(run.sync_id, status=FAILED, error_code=error["code"], error_message=error["message"],
                             duration_s=run.elapsed(), note=None, finished_at=now)
            feed = repo.get(run.feed_id)
            repo.release(run.feed_id, run.sync_id,
                         next_sync_at=_next_sync(feed.schedule, now) if feed is not None else None)
            repo.prune_syncs(run.feed_id, KEEP_SYNCS)

    def _out(self, repo: FeedRepository, feed: Feed, syncs: int) -> FeedOut:
        return FeedOut(id=feed.id, url=feed.url, format=feed.format, schedule=feed.schedule,
                       delete_missing=feed.delete_missing, syncing=feed.active_sync_id is not None,
                       next_sync_at=feed.next_sync_at, created_at=feed.created_at,
                       syncs=[self._sync_out(repo, sync) for sync in repo.recent_syncs(feed.id, syncs)])

    @staticmethod
    def _sync_out(repo: FeedRepository, sync: FeedSync) -> FeedSyncOut:
        """Failures by code: those refused while syncing, and the products of its ingest jobs that failed since."""
        failed = dict(sync.failed_by_code or {})
        for code, count in repo.ingest_failures(sync.jobs or []).items():
            failed[code] = failed.get(code, 0) + count
        counts = dict(sync.counts or {})
        counts[FAILED_COUNT] = sum(failed.values())
        error = {"code": sync.error_code, "message": sync.error_message} if sync.error_code else None
        return FeedSyncOut(sync_id=sync.id, status=sync.status, trigger=sync.trigger, not_modified=sync.not_modified,
                           counts=SyncCounts(**counts), failed_by_code=failed, rejected=sync.rejected or [],
                           jobs=sync.jobs or [], bytes=sync.bytes, duration_s=sync.duration_s, note=sync.note,
                           error=error, created_at=sync.created_at, finished_at=sync.finished_at)


def _found(feed: Feed | None, feed_id: str) -> Feed:
    if feed is None:
        raise NotFound(f"no feed {feed_id!r}", code="feed_not_found")
    return feed


def _next_sync(schedule: str, after: datetime) -> datetime | None:
    return None if schedule == MANUAL else after + timedelta(seconds=SCHEDULE_SECONDS[schedule])
