"""The query pipeline per mode: build a query vector, pre-filtered ANN, score, explain, log IDs only.

Privacy: query images and audio live only in memory (bytes ▸ pixels ▸ vector) and are dropped after
the request; the search log keeps ids, mode, profile and timings, never the query itself.
"""

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from trooply.config import Settings
from trooply.db import Database
from trooply.errors import InvalidRequest, TrooplyError
from trooply.index.base import Condition, IndexHit, VectorIndex
from trooply.index.filters import parse_filters
from trooply.search.log_writer import SearchLogWriter
from trooply.search.models import SearchLog
from trooply.search.schemas import (MAX_MULTI_IMAGES, MIN_MULTI_IMAGES, PROFILES, MatchBreakdown, QueryTimingsOut,
                                    SearchEnvelope, SearchHit, SearchOptions)
from trooply.vision.decode import crop_image, decode_image
from trooply.vision.encoder import ClipEncoder
from trooply.vision.fetch import ImageFetcher
from trooply.voice.transcriber import Transcriber


@dataclass(frozen=True)
class QueryImage:
    """A query image given by URL (fetched under the same rules as catalogue images) or uploaded bytes."""

    url: str | None = None
    data: bytes | None = None


@dataclass
class QueryTimings:
    """Where a search spent its time, so benchmarks can separate models from our own overhead."""

    model_ms: float = 0.0
    transcribe_ms: float = 0.0


class SearchService:
    def __init__(self, db: Database, index: Callable[[], VectorIndex], encoder: Callable[[], ClipEncoder],
                 transcriber: Callable[[], Transcriber], fetcher: ImageFetcher, settings: Settings) -> None:
        self.db = db
        self._index = index
        self._encoder = encoder
        self._transcriber = transcriber
        self.fetcher = fetcher
        self.settings = settings
        self.log_writer = SearchLogWriter(db)

    def search_text(self, tenant_id: str, query: str, options: SearchOptions) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimings()
        vector = self._timed(timings, lambda: self._encoder().encode_text(query))
        return self._retrieve(tenant_id, "text", vector, conditions, options, started, timings)

    def search_image(self, tenant_id: str, image: QueryImage, options: SearchOptions) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimings()
        vector = self._embed(self._load(image), timings)
        return self._retrieve(tenant_id, "url" if image.url else "image", vector, conditions, options, started,
                              timings)

    def search_crop(self, tenant_id: str, image: QueryImage, bbox: Sequence[float],
                    options: SearchOptions) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimings()
        vector = self._embed(crop_image(self._load(image), bbox), timings)
        return self._retrieve(tenant_id, "crop", vector, conditions, options, started, timings)

    def search_multi(self, tenant_id: str, images: Sequence[QueryImage], options: SearchOptions) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimings()
        if not MIN_MULTI_IMAGES <= len(images) <= MAX_MULTI_IMAGES:
            raise InvalidRequest(f"multi-image search takes {MIN_MULTI_IMAGES} to {MAX_MULTI_IMAGES} images, "
                                 f"got {len(images)}", code="wrong_image_count")
        pictures = [self._load_numbered(position, image) for position, image in enumerate(images)]
        vectors = self._timed(timings, lambda: self._encoder().encode_images(pictures))
        vector = _unit(vectors.mean(axis=0))
        return self._retrieve(tenant_id, "multi", vector, conditions, options, started, timings)

    def search_fusion(self, tenant_id: str, image: QueryImage, text: str, image_weight: float,
                      options: SearchOptions) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimings()
        picture = self._load(image)
        encoder = self._encoder()
        image_vector = self._embed(picture, timings)
        text_vector = self._timed(timings, lambda: encoder.encode_text(text))
        vector = _unit(image_weight * image_vector + (1.0 - image_weight) * text_vector)
        return self._retrieve(tenant_id, "fusion", vector, conditions, options, started, timings)

    def search_voice(self, tenant_id: str, audio: bytes, options: SearchOptions) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimings()
        heard_at = time.perf_counter()
        transcript = self._transcriber().transcribe(audio)
        timings.transcribe_ms = (time.perf_counter() - heard_at) * 1000
        vector = self._timed(timings, lambda: self._encoder().encode_text(transcript))
        envelope = self._retrieve(tenant_id, "voice", vector, conditions, options, started, timings)
        envelope.transcript = transcript
        return envelope

    def _validate(self, options: SearchOptions) -> list[Condition]:
        if options.profile is not None and options.profile not in PROFILES:
            raise InvalidRequest(f"unknown profile {options.profile!r}; use one of {', '.join(PROFILES)}",
                                 code="unknown_profile")
        return parse_filters(options.filters)

    def _load(self, image: QueryImage) -> Image.Image:
        if (image.url is None) == (image.data is None):
            raise InvalidRequest("send exactly one image: `image_url` or an uploaded file", code="image_required")
        data = image.data if image.data is not None else self.fetcher.fetch(image.url).data
        return decode_image(data, self.settings.max_image_pixels).image

    def _load_numbered(self, position: int, image: QueryImage) -> Image.Image:
        try:
            return self._load(image)
        except TrooplyError as error:
            raise type(error)(f"image {position}: {error.message}", code=error.code, status=error.status,
                              details={"index": position}) from error

    def _embed(self, picture: Image.Image, timings: QueryTimings) -> np.ndarray:
        return self._timed(timings, lambda: self._encoder().encode_images([picture])[0])

    @staticmethod
    def _timed(timings: QueryTimings, encode: Callable[[], np.ndarray]) -> np.ndarray:
        began = time.perf_counter()
        vector = encode()
        timings.model_ms += (time.perf_counter() - began) * 1000
        return vector

    def _retrieve(self, tenant_id: str, mode: str, vector: np.ndarray, conditions: list[Condition],
                  options: SearchOptions, started: float, timings: QueryTimings) -> SearchEnvelope:
        hits = self._index().query(tenant_id, vector, options.limit, conditions)
        results = [result for result in map(_score, hits) if result.similarity_score >= options.threshold]
        if not options.explain:
            for result in results:
                result.match_breakdown, result.explanation = None, None
        took_ms = round((time.perf_counter() - started) * 1000, 2)
        envelope = SearchEnvelope(search_id=f"srch_{uuid.uuid4().hex[:20]}", mode=mode, profile=options.profile,
                                  took_ms=took_ms, timings=QueryTimingsOut(model_ms=round(timings.model_ms, 2),
                                                                          transcribe_ms=round(timings.transcribe_ms, 2)),
                                  results=results)
        self._log(tenant_id, envelope)
        return envelope

    def _log(self, tenant_id: str, envelope: SearchEnvelope) -> None:
        self.log_writer.write(SearchLog(id=envelope.search_id, tenant_id=tenant_id, mode=envelope.mode,
                                        profile=envelope.profile, product_ids=[r.id for r in envelope.results],
                                        took_ms=envelope.took_ms))


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm < 1e-6:
        raise InvalidRequest("the image and text cancel each other out; change image_weight",
                             code="degenerate_query")
    return (vector / norm).astype(np.float32)


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
