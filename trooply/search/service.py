"""The query pipeline per mode: build a query vector, pre-filtered ANN, score, explain, log IDs only."""

import time
import uuid
from collections.abc import Callable

import numpy as np

from trooply.config import Settings
from trooply.db import Database
from trooply.errors import InvalidRequest
from trooply.index.base import IndexHit, VectorIndex
from trooply.index.filters import parse_filters
from trooply.search.log_writer import SearchLogWriter
from trooply.search.models import SearchLog
from trooply.search.schemas import PROFILES, MatchBreakdown, SearchEnvelope, SearchHit, SearchOptions
from trooply.vision.decode import decode_image
from trooply.vision.encoder import ClipEncoder
from trooply.vision.fetch import ImageFetcher


class SearchService:
    def __init__(self, db: Database, index: Callable[[], VectorIndex], encoder: Callable[[], ClipEncoder],
                 fetcher: ImageFetcher, settings: Settings) -> None:
        self.db = db
        self._index = index
        self._encoder = encoder
        self.fetcher = fetcher
        self.settings = settings
        self.log_writer = SearchLogWriter(db)

    def search_text(self, tenant_id: str, query: str, options: SearchOptions) -> SearchEnvelope:
        started = time.perf_counter()
        conditions = self._validate(options)
        vector = self._encoder().encode_text(query)
        return self._retrieve(tenant_id, "text", vector, conditions, options, started)

    def search_url(self, tenant_id: str, image_url: str, options: SearchOptions) -> SearchEnvelope:
        started = time.perf_counter()
        conditions = self._validate(options)
        data = self.fetcher.fetch(image_url).data
        return self._retrieve(tenant_id, "url", self._embed_image(data), conditions, options, started)

    def search_image(self, tenant_id: str, data: bytes, options: SearchOptions) -> SearchEnvelope:
        started = time.perf_counter()
        conditions = self._validate(options)
        return self._retrieve(tenant_id, "image", self._embed_image(data), conditions, options, started)

    def _validate(self, options: SearchOptions):
        if options.profile is not None and options.profile not in PROFILES:
            raise InvalidRequest(f"unknown profile {options.profile!r}; use one of {', '.join(PROFILES)}",
                                 code="unknown_profile")
        return parse_filters(options.filters)

    def _embed_image(self, data: bytes) -> np.ndarray:
        # Query images live only in memory: decoded, embedded, dropped.
        decoded = decode_image(data, self.settings.max_image_pixels)
        return self._encoder().encode_images([decoded.image])[0]

    def _retrieve(self, tenant_id: str, mode: str, vector: np.ndarray, conditions, options: SearchOptions,
                  started: float) -> SearchEnvelope:
        hits = self._index().query(tenant_id, vector, options.limit, conditions)
        results = [result for result in map(_score, hits) if result.similarity_score >= options.threshold]
        if not options.explain:
            for result in results:
                result.match_breakdown, result.explanation = None, None
        took_ms = round((time.perf_counter() - started) * 1000, 2)
        envelope = SearchEnvelope(search_id=f"srch_{uuid.uuid4().hex[:20]}", mode=mode, profile=options.profile,
                                  took_ms=took_ms, results=results)
        self._log(tenant_id, envelope)
        return envelope

    def _log(self, tenant_id: str, envelope: SearchEnvelope) -> None:
        self.log_writer.write(SearchLog(id=envelope.search_id, tenant_id=tenant_id, mode=envelope.mode,
                                        profile=envelope.profile, product_ids=[r.id for r in envelope.results],
                                        took_ms=envelope.took_ms))


def clip_signal(cosine: float) -> float:
    return round(min(1.0, max(0.0, (cosine + 1.0) / 2.0)), 4)


def _score(hit: IndexHit) -> SearchHit:
    clip = clip_signal(hit.score)
    return SearchHit(id=hit.product_id, similarity_score=clip, metadata=hit.payload.get("metadata", {}),
                     match_breakdown=MatchBreakdown(signals={"clip": clip}, weights={"clip": 1.0}),
                     explanation=_explain(clip))


def _explain(clip: float) -> str:
    strength = "Close" if clip >= 0.9 else "Good" if clip >= 0.75 else "Partial"
    return f"{strength} visual match ({clip:.0%} CLIP similarity)"
