"""Wires settings into services; heavy parts (model, index) open on first use or at start()."""

import threading

from trooply.admin.languages import LanguageService
from trooply.admin.service import TenantAdminService
from trooply.analytics.service import AnalyticsService
from trooply.catalog.ingest import IngestOutcome, IngestPipeline, run_ingest_task
from trooply.catalog.service import CatalogService
from trooply.colour_refresh.service import ColourRefreshService
from trooply.colour_refresh.task import ColourRefresher
from trooply.config import Settings
from trooply.db import Database
from trooply.detection.service import DetectionService
from trooply.duplicates.service import DuplicateService
from trooply.feedback.popularity import PopularityService
from trooply.feedback.retention import RETENTION_SWEEP_SECONDS, RetentionSweep
from trooply.feedback.service import FeedbackService
from trooply.feeds.download import FeedDownloader
from trooply.feeds.service import FeedService
from trooply.index.base import SpaceIndex
from trooply.index.datadir_lock import DataDirLock
from trooply.model_migration.service import ModelMigrationService
from trooply.model_migration.task import TenantReencoder
from trooply.ranking.families import FamilyClassifier
from trooply.ranking.profiles import DEFAULT_PROFILES_DIR, load_profiles
from trooply.ranking.rules import RuleService
from trooply.runtime.inference import ModelRuntime, SlotDetector
from trooply.runtime.lazy import Lazy
from trooply.scheduling import PeriodicTask
from trooply.search.encoders import QueryEncoders
from trooply.search.reranking import RankingSetup
from trooply.search.service import SearchService
from trooply.spaces.live import LiveSpaces
from trooply.spaces.state import ModelSpec
from trooply.spaces.writes import SpaceWriter
from trooply.tasks.names import (
    COLOUR_REFRESH_TASK,
    DROP_SPACE_TASK,
    FEED_SYNC_TASK,
    FEEDS_DUE_TASK,
    INGEST_TASK,
    POPULARITY_TASK,
    PURGE_TASK,
    REENCODE_TASK,
    RETENTION_TASK,
    RETOKENISE_TASK,
    SCAN_TASK,
    TASK_NAMES,
)
from trooply.tasks.queue import CeleryDispatcher, Dispatcher, InProcessQueue, Task
from trooply.tenancy.languages import TenantLanguages
from trooply.tenancy.service import TenantService
from trooply.tenancy.usage import UsageService
from trooply.vectors import VectorSpace
from trooply.vision.clip_runtime import ingest_workers
from trooply.vision.detection import Detector, ZeroShotDetector
from trooply.vision.encoder import ClipEncoder
from trooply.vision.fetch import ImageFetcher
from trooply.vision.query_fetch import QueryImageFetcher
from trooply.vision.query_image import QueryImageLoader

MODEL_SWEEP_SECONDS = 5.0
PURGE_SWEEP_SECONDS = 10.0


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.sql_url)
        self.fetcher = ImageFetcher.from_settings(settings)
        self.query_fetcher = QueryImageFetcher.from_settings(settings)  # its own pool: shoppers' URLs
        self.dispatcher: Dispatcher = (CeleryDispatcher(settings.redis_url) if settings.redis_url
                                       else InProcessQueue(ingest_workers(settings)))
        # A bad profile file fails start-up.
        self.profiles = load_profiles(settings.ranking.profiles_dir or DEFAULT_PROFILES_DIR)
        # The active CLIP model (and a migration's other one) as SQL records it, re-read every few seconds.
        self.model_migration = ModelMigrationService(self.db, settings, self.dispatcher)
        self.runtime = ModelRuntime(settings)  # every model, CLIP loaded on first use; forward passes on its threads
        self.runtime.follow_active_model(self._active_model)
        # Opened on first use: `trooply migrate`, `reindex` and the Celery shape's API never load what they skip.
        # One index per model's vector space; services see them as one (reads: the active model's).
        self._dir_lock: DataDirLock | None = None
        # Each tenant's language: its words are tokenised in it when written (every index) and when searched.
        self.languages = TenantLanguages(self.db, settings.limits.key_cache_seconds)
        self._open_lock = threading.Lock()
        # Services take these by name; each space's index opens on first use, so a process that only queues work
        # never takes the index lock.
        self.spaces = LiveSpaces(self.model_migration.state.current, self._open_index)
        self._pipeline: Lazy[IngestPipeline] = Lazy(self._open_pipeline)
        self.classifier = FamilyClassifier(self.profiles, self.runtime.clip)
        self.tenants = TenantService(self.db, settings.limits.key_cache_seconds, plans=settings.plans)
        self.catalog = CatalogService(self.db, self.spaces, self.dispatcher, settings,
                                      self.classifier.family_of_category)
        self.rules = RuleService(self.db, list(self.profiles))
        self.usage = UsageService(self.db, settings)
        loader = QueryImageLoader(self.fetcher, settings.images.max_pixels, settings.images.decode_max_side,
                                  settings.images.max_concurrent_large_decodes)
        self.zero_shot_detector = ZeroShotDetector(self.runtime.clip, settings.detection.max_proposals)
        self.detection = DetectionService(loader, self._detector(), self.zero_shot_detector, self.runtime.clip,
                                          self.usage)
        self.search = SearchService(QueryEncoders(self.runtime.clip, self.runtime.transcribe, loader, self.detection),
                                    self.spaces, RankingSetup(self.profiles, self.classifier, self.rules), self.db,
                                    settings, languages=self.languages)
        self.feedback = FeedbackService(self.db, self.search.log_writer)
        self.analytics = AnalyticsService(self.db, settings.analytics.retention_days)
        self.retention = RetentionSweep(self.db, settings.analytics)
        self.popularity = PopularityService(self.db, self.spaces, settings.ranking.popularity_half_life_days,
                                            settings.ranking.popularity_position_bias)
        self.duplicates = DuplicateService(self.db, self.spaces, settings, self._send_scan)
        language_changes = LanguageService(self.db, self.languages, self.dispatcher, self.spaces)
        self.admin = TenantAdminService(self.db, self.tenants, settings, self.dispatcher, self.spaces,
                                        languages=language_changes)
        self.reencoder = TenantReencoder(self.db, self.spaces, self._encoder_for, self.fetcher, settings,
                                         self.model_migration.read)
        self.colour_refresh = ColourRefreshService(self.db, self.dispatcher)
        self.colour_refresher = ColourRefresher(self.db, self.spaces, self.fetcher, settings)
        self.feeds = FeedService(self.db, self.catalog, FeedDownloader.from_settings(settings), settings,
                                 self._send_feed_sync)
        for name, task in self.tasks().items():
            self.dispatcher.register(name, task)
        self._refresher: PeriodicTask | None = None
        self._model_sweep: PeriodicTask | None = None
        self._purge_sweep: PeriodicTask | None = None
        self._feed_schedule: PeriodicTask | None = None
        self._retention_sweep: PeriodicTask | None = None
        self._language_sweep: PeriodicTask | None = None

    def tasks(self) -> dict[str, Task]:
        """Every task name (trooply/tasks/names.py) to the function that runs it: both queue shapes run these,
        embedded in this process, with Celery in a worker's container (workers/tasks.py)."""
        tasks: dict[str, Task] = {
            INGEST_TASK: self.run_ingest,
            SCAN_TASK: self.duplicates.run_scan,
            PURGE_TASK: self.admin.run_purge,
            RETOKENISE_TASK: self.admin.languages.run,
            REENCODE_TASK: lambda tenant_id, space: self.model_migration.reencode(self.reencoder, tenant_id, space),
            DROP_SPACE_TASK: self._drop_space,
            COLOUR_REFRESH_TASK: lambda tenant_id: self.colour_refresh.run(self.colour_refresher, tenant_id),
            FEED_SYNC_TASK: self.feeds.run_sync,
            # Sent by `trooply beat`; embedded, the periodic threads of `start` call the same functions.
            POPULARITY_TASK: self.popularity.refresh_all,
            FEEDS_DUE_TASK: self.feeds.sync_due,
            RETENTION_TASK: self.retention.run,
        }
        if set(tasks) != set(TASK_NAMES):
            raise RuntimeError(f"tasks without a function or a declared name: {set(tasks) ^ set(TASK_NAMES)}")
        return tasks

    @property
    def embedded_queue(self) -> bool:
        return self.dispatcher.runs_here

    @property
    def encoder(self) -> ClipEncoder:
        return self.runtime.clip()

    @property
    def index(self) -> LiveSpaces:
        """The live spaces, by the name tests and tools have long read them under."""
        return self.spaces

    @property
    def pipeline(self) -> IngestPipeline:
        return self._pipeline()

    def run_ingest(self, tenant_id: str, job_id: str, product_ids: list[str]) -> IngestOutcome:
        return run_ingest_task(self.pipeline, self.dispatcher, tenant_id, job_id, product_ids)

    def start(self) -> None:
        """Migrate and load the model; embedded: also open the index, start the pool, resume unfinished work."""
        self.prepare()
        self.runtime.start()
        self.classifier.warm_up()  # loads the model and embeds the profile prompts before the first request
        if self.dispatcher.runs_here:  # embedded; Celery's workers start on their own (`trooply worker`)
            self.spaces.open_active()
            self.dispatcher.start()
            # Celery beat refreshes popularity in the single-host shape; embedded, this thread does.
            self._refresher = PeriodicTask(self.settings.ranking.popularity_refresh_seconds,
                                           self.popularity.refresh_all, "popularity-refresh")
            self._retention_sweep = PeriodicTask(RETENTION_SWEEP_SECONDS, self.retention.run, "analytics-retention")
            self.catalog.resume_unfinished()
            self.duplicates.resume_unfinished()
            # Both sweeps also pick up what the CLI asked for in another process (`trooply tenants delete`,
            # `trooply models …`).
            self._purge_sweep = PeriodicTask(PURGE_SWEEP_SECONDS, self.admin.resume_purges, "tenant-purge")
            self.admin.resume_purges()
            # Re-tokenises a stop interrupted, or that the CLI's `tenants update --language` asked for.
            self._language_sweep = PeriodicTask(PURGE_SWEEP_SECONDS, self.admin.languages.resume, "tenant-language")
            self.admin.languages.resume()
            self._model_sweep = PeriodicTask(MODEL_SWEEP_SECONDS, self.model_migration.resume_unfinished,
                                             "model-migration")
            self.model_migration.resume_unfinished()
            self.colour_refresh.start()  # tenants stored by an older colour signal (none once current), resumed
            # Celery beat sends the due feeds' syncs in the other shapes (workers/celery_app.py).
            self.feeds.resume_unfinished()
            self._feed_schedule = PeriodicTask(self.settings.feeds.schedule_check_seconds, self.feeds.sync_due,
                                               "feed-schedule")

    def fill_words(self) -> None:
        """`trooply migrate`: indexes built before the lexical leg get their words now (else they do at open)."""
        self.spaces.fill_words()

    def prepare(self) -> None:
        """The SQL schema, every tenant's plan in the plan table, and the active model recorded (from the
        settings at the very first start)."""
        self.db.migrate()
        self.tenants.check_plans()
        self.model_migration.ensure_state()

    def stop(self) -> None:
        for periodic in (self._refresher, self._model_sweep, self._purge_sweep, self._feed_schedule,
                         self._retention_sweep, self._language_sweep):
            if periodic is not None:
                periodic.stop()
        self.reencoder.close()  # a running re-encode stops between two pages; it resumes at the next start
        self.colour_refresher.close()  # so does a colour refresh
        self.duplicates.close()  # first: a running scan stops between two batches and frees its queue thread
        self.admin.close()  # so does a running purge
        self.feeds.close()  # and a running feed sync, between two batches
        self.dispatcher.stop()
        self.query_fetcher.close()
        self._pipeline.close(lambda pipeline: pipeline.close())  # after the queue: no ingest task is fetching
        self.fetcher.close()
        self.runtime.stop()  # after the queue and the pipeline: ingest's last passes are drained first
        self.search.log_writer.close()
        self.spaces.close()
        if self._dir_lock is not None:
            self._dir_lock.release()
        self.db.close()

    def _send_feed_sync(self, tenant_id: str, sync_id: str, delay: float = 0.0) -> None:
        self.dispatcher.send(FEED_SYNC_TASK, [tenant_id, sync_id], delay)

    def _send_scan(self, tenant_id: str, scan_id: str) -> None:
        self.dispatcher.send(SCAN_TASK, [tenant_id, scan_id])

    def _detector(self) -> Detector:
        if self.runtime.detector is not None:
            return SlotDetector(self.runtime.detector)
        return self.zero_shot_detector

    def _active_model(self) -> tuple[str, str]:
        active = self.model_migration.state.current().active
        return active.model, active.pretrained

    def _encoder_for(self, spec: ModelSpec) -> ClipEncoder:
        return self.runtime.clip_for(spec.model, spec.pretrained)

    def _drop_space(self, space_name: str, dim: int) -> None:
        """The cleanup task: the retired model's vectors, then the model itself where this process loaded it."""
        self.model_migration.drop_space(self.spaces, space_name, dim)
        self.runtime.release_clips({(spec.model, spec.pretrained) for spec in self.model_migration.read().written})

    def _open_index(self, space: VectorSpace) -> SpaceIndex:
        from trooply.index.legacy_layout import move_legacy_layout

        index = self._open_engine(space)
        try:
            move_legacy_layout(index)  # the layout from before tiers, before the index serves a call
        except BaseException:
            index.close()  # not kept: the next use opens it and tries the move again
            raise
        return index

    def _open_engine(self, space: VectorSpace) -> SpaceIndex:
        if self.settings.qdrant.url:
            from trooply.index.server import QdrantServerIndex

            server = QdrantServerIndex.from_settings(self.settings, space,
                                                     kept=lambda: space in self.spaces.kept())
            server.languages = self.languages
            return server
        from trooply.index.edge import EdgeIndex

        with self._open_lock:  # one data-directory lock, shared by every space's index and released at stop
            if self._dir_lock is None:
                self._dir_lock = DataDirLock(self.settings.data_dir)
        edge = EdgeIndex(self.settings.data_dir, space, self.settings.index.optimize_threshold,
                         self.settings.index.promotion_threshold, lock=self._dir_lock)
        edge.languages = self.languages
        return edge

    def _open_pipeline(self) -> IngestPipeline:
        writer = SpaceWriter(self.spaces, self._encoder_for, self.model_migration)
        return IngestPipeline(self.db, writer, self.classifier, self.fetcher, self.settings)
