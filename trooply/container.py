"""Wires settings into services; heavy parts (model, index) open on first use or at start()."""

import logging
import threading

from trooply.catalog.ingest import IngestOutcome, IngestPipeline, run_ingest_task
from trooply.catalog.queue import CeleryDispatcher, Dispatcher, InProcessQueue
from trooply.catalog.service import CatalogService
from trooply.config import Settings
from trooply.db import Database
from trooply.duplicates.service import SCAN_TASK, DuplicateService
from trooply.feedback.popularity import PopularityService
from trooply.feedback.service import FeedbackService
from trooply.index.base import VectorIndex
from trooply.items.service import ItemService
from trooply.ranking.families import FamilyClassifier
from trooply.ranking.profiles import DEFAULT_PROFILES_DIR, load_profiles
from trooply.ranking.rules import RuleService
from trooply.runtime.models import ModelRuntime, SlotDetector
from trooply.scheduling import PeriodicTask
from trooply.search.service import SearchService
from trooply.tenancy.service import TenantService
from trooply.tenancy.usage import UsageService
from trooply.vision.detection import Detector, ZeroShotDetector
from trooply.vision.encoder import ClipEncoder, vector_space
from trooply.vision.fetch import ImageFetcher
from trooply.vision.query_fetch import QueryImageFetcher
from trooply.vision.query_image import QueryImageLoader

log = logging.getLogger(__name__)


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.sql_url)
        self.fetcher = ImageFetcher.from_settings(settings)
        self.query_fetcher = QueryImageFetcher.from_settings(settings)  # its own pool: shoppers' URLs
        self.dispatcher: Dispatcher = (CeleryDispatcher(settings.redis_url) if settings.redis_url
                                       else InProcessQueue(settings.ingest_workers))
        self.profiles = load_profiles(settings.profiles_dir or DEFAULT_PROFILES_DIR)  # a bad file fails start-up
        self.classifier = FamilyClassifier(self.profiles, lambda: self.encoder)
        self.tenants = TenantService(self.db, settings.key_cache_seconds)
        self.catalog = CatalogService(self.db, lambda: self.index, self.dispatcher, settings,
                                      self.classifier.of_category)
        self.rules = RuleService(self.db, list(self.profiles))
        self.usage = UsageService(self.db, settings)
        loader = QueryImageLoader(self.fetcher, settings.max_image_pixels, settings.decode_max_side,
                                  settings.max_concurrent_large_decodes)
        self.runtime = ModelRuntime(settings)  # every model; forward passes run on its threads
        self.zero_shot_detector = ZeroShotDetector(lambda: self.encoder, settings.detector_max_proposals)
        self.items = ItemService(loader, self._detector(), self.zero_shot_detector, lambda: self.encoder, self.usage)
        self.search = SearchService(self.db, lambda: self.index, lambda: self.encoder, self.runtime.transcribe,
                                    lambda: self.classifier, self.profiles, self.rules, loader, lambda: self.items,
                                    settings)
        self.feedback = FeedbackService(self.db, self.search.log_writer)
        self.popularity = PopularityService(self.db, lambda: self.index, settings.popularity_half_life_days)
        # Scans go to the Celery workers; embedded (no sender), to a thread of this process.
        send_scan = self.dispatcher.send if isinstance(self.dispatcher, CeleryDispatcher) else None
        self.duplicates = DuplicateService(self.db, lambda: self.index, settings,
                                           (lambda *scan: send_scan(SCAN_TASK, list(scan))) if send_scan else None)
        self._refresher: PeriodicTask | None = None
        self._open_lock = threading.RLock()  # re-entrant: the pipeline opens the index and model
        self._opened: dict[str, object] = {}

    @property
    def embedded_queue(self) -> bool:
        return isinstance(self.dispatcher, InProcessQueue)

    def _detector(self) -> Detector:
        if self.runtime.detector is not None:
            return SlotDetector(self.runtime.detector)
        return self.zero_shot_detector

    def _once(self, name: str, build):
        with self._open_lock:
            if name not in self._opened:
                self._opened[name] = build()
            return self._opened[name]

    @property
    def encoder(self) -> ClipEncoder:
        return self.runtime.clip

    @property
    def index(self) -> VectorIndex:
        return self._once("index", self._open_index)

    @property
    def pipeline(self) -> IngestPipeline:
        return self._once("pipeline", lambda: IngestPipeline(self.db, self.index, self.encoder, self.classifier,
                                                              self.fetcher, self.settings))

    def _open_index(self) -> VectorIndex:
        space = vector_space(self.settings.clip_model, self.settings.clip_pretrained)
        if self.settings.qdrant_url:
            from trooply.index.server import QdrantServerIndex

            return QdrantServerIndex.from_settings(self.settings, space)
        from trooply.index.edge import EdgeIndex

        return EdgeIndex(self.settings.data_dir, space, self.settings.index_optimize_threshold)

    def run_ingest(self, tenant_id: str, job_id: str, product_ids: list[str]) -> IngestOutcome:
        return run_ingest_task(self.pipeline, self.dispatcher, tenant_id, job_id, product_ids)

    def start(self) -> None:
        """Migrate and load the model; embedded: also open the index, start the pool, resume unfinished work."""
        self.db.migrate()
        self.runtime.start()
        self.classifier.warm_up()  # loads the model and embeds the profile prompts before the first request
        if isinstance(self.dispatcher, InProcessQueue):  # embedded
            _ = self.index  # takes the data-directory lock now: a second `serve` must refuse at start
            self.dispatcher.start(self.run_ingest)
            # Celery beat refreshes popularity in the single-host shape; embedded, this thread does.
            self._refresher = PeriodicTask(self.settings.popularity_refresh_seconds, self.popularity.refresh_all,
                                           "popularity-refresh")
            self.catalog.resume_unfinished()
            self.duplicates.resume_unfinished()

    def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.stop()
        if isinstance(self.dispatcher, InProcessQueue):  # embedded
            self.dispatcher.stop()
        self.query_fetcher.close()
        if "pipeline" in self._opened:
            self.pipeline.close()  # after the queue: no ingest task is fetching any more
        self.fetcher.close()
        self.runtime.stop()  # after the queue and the pipeline: ingest's last passes are drained first
        self.search.log_writer.close()
        self.duplicates.close()  # before the index: a scan stops between two batches
        if "index" in self._opened:
            self.index.close()
        self.db.close()
