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
from trooply.index.base import Condition, VectorIndex
from trooply.index.filters import parse_filters
from trooply.observability import INDEX_QUERY_SECONDS, SEARCH_SECONDS, timed
from trooply.ranking.engine import QuerySignals, RankedCandidate, rank
from trooply.ranking.explain import explain
from trooply.ranking.families import FamilyClassifier, FamilyGuess
from trooply.ranking.profiles import ScoringProfile
from trooply.ranking.rules import RuleService
from trooply.search.log_writer import SearchLogWriter
from trooply.search.models import SearchLog
from trooply.search.schemas import (
    MAX_MULTI_IMAGES,
    MIN_MULTI_IMAGES,
    DetectionOut,
    MatchBreakdown,
    QueryTimingsOut,
    SearchEnvelope,
    SearchHit,
    SearchOptions,
)
from trooply.vision.colour import (
    colour_histogram,
    colour_words_in,
    dominant_colour_name,
    mix_histograms,
    target_histogram,
)
from trooply.vision.decode import crop_image
from trooply.vision.encoder import ClipEncoder
from trooply.vision.items import ItemService
from trooply.vision.query_image import QueryImage, QueryImageLoader


@dataclass(frozen=True)
class QueryLook:
    """The query's colour and shape, for the colour and aspect signals (None: nothing to compare)."""

    colour_hist: list[float] | None = None
    colour_name: str | None = None
    aspect_ratio: float | None = None

    @classmethod
    def of_text(cls, text: str) -> "QueryLook":
        words = colour_words_in(text)
        return cls(target_histogram(words), " and ".join(dict.fromkeys(words))) if words else cls()

    @classmethod
    def of_images(cls, pictures: Sequence[Image.Image]) -> "QueryLook":
        hist = mix_histograms([colour_histogram(p) for p in pictures])
        log_ratio = float(np.mean([np.log(p.width / p.height) for p in pictures]))
        return cls(hist, dominant_colour_name(hist), round(float(np.exp(log_ratio)), 4))


class SearchService:
    def __init__(self, db: Database, index: Callable[[], VectorIndex], encoder: Callable[[], ClipEncoder],
                 transcribe: Callable[[bytes], str], classifier: Callable[[], FamilyClassifier],
                 profiles: dict[str, ScoringProfile], rules: RuleService, loader: QueryImageLoader,
                 items: Callable[[], "ItemService"], settings: Settings) -> None:
        self.db = db
        self._index = index
        self._encoder = encoder
        self._transcribe = transcribe
        self._classifier = classifier
        self.profiles = profiles
        self.rules = rules
        self.loader = loader
        self._items = items
        self.settings = settings
        self.log_writer = SearchLogWriter(db)

    def search_text(self, tenant_id: str, query: str, options: SearchOptions) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimingsOut()
        vector = self._timed(timings, lambda: self._encoder().encode_text(query))
        return self._retrieve(tenant_id, "text", vector, QueryLook.of_text(query), conditions, options, started,
                              timings)

    def search_image(self, tenant_id: str, image: QueryImage, options: SearchOptions, detect: bool = False,
                     detect_class: int | None = None) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimingsOut()
        decoded, used = self.loader.decode(image), None
        picture = decoded.image
        if detect:
            # Street photos hold several products: search on the most prominent item, not the scene.
            used = self._items().most_prominent(tenant_id, decoded, detect_class)
            if used is not None:
                picture = decoded.crop(used.box)
        vector = self._embed(picture, timings)
        envelope = self._retrieve(tenant_id, "url" if image.url else "image", vector, QueryLook.of_images([picture]),
                                  conditions, options, started, timings)
        if detect:
            envelope.detection = DetectionOut.of(used) if used is not None else None
        return envelope

    def search_crop(self, tenant_id: str, image: QueryImage, bbox: Sequence[float],
                    options: SearchOptions) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimingsOut()
        picture = crop_image(self.loader.decode(image), bbox)
        vector = self._embed(picture, timings)
        return self._retrieve(tenant_id, "crop", vector, QueryLook.of_images([picture]), conditions, options,
                              started, timings)

    def search_multi(self, tenant_id: str, images: Sequence[QueryImage], options: SearchOptions) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimingsOut()
        if not MIN_MULTI_IMAGES <= len(images) <= MAX_MULTI_IMAGES:
            raise InvalidRequest(f"multi-image search takes {MIN_MULTI_IMAGES} to {MAX_MULTI_IMAGES} images, "
                                 f"got {len(images)}", code="wrong_image_count")
        pictures = []
        for position, image in enumerate(images):
            try:
                pictures.append(self.loader.load(image))
            except TrooplyError as error:
                raise error.for_item(f"image {position}", position) from error
        vectors = self._timed(timings, lambda: self._encoder().encode_images(pictures))
        vector = _unit(vectors.mean(axis=0))
        return self._retrieve(tenant_id, "multi", vector, QueryLook.of_images(pictures), conditions, options,
                              started, timings)

    def search_fusion(self, tenant_id: str, image: QueryImage, text: str, image_weight: float,
                      options: SearchOptions) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimingsOut()
        picture = self.loader.load(image)
        image_vector = self._embed(picture, timings)
        text_vector = self._timed(timings, lambda: self._encoder().encode_text(text))
        vector = _unit(image_weight * image_vector + (1.0 - image_weight) * text_vector)
        look = _fused_look(picture, text, image_weight)
        return self._retrieve(tenant_id, "fusion", vector, look, conditions, options, started, timings)

    def search_voice(self, tenant_id: str, audio: bytes, options: SearchOptions) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimingsOut()
        heard_at = time.perf_counter()
        transcript = self._transcribe(audio)
        timings.transcribe_ms = (time.perf_counter() - heard_at) * 1000
        vector = self._timed(timings, lambda: self._encoder().encode_text(transcript))
        envelope = self._retrieve(tenant_id, "voice", vector, QueryLook.of_text(transcript), conditions, options,
                                  started, timings)
        envelope.transcript = transcript
        return envelope

    def _validate(self, options: SearchOptions) -> list[Condition]:
        if options.profile is not None and options.profile not in self.profiles:
            raise InvalidRequest(f"unknown profile {options.profile!r}; use one of {', '.join(self.profiles)}",
                                 code="unknown_profile")
        return parse_filters(options.filters)

    def _embed(self, picture: Image.Image, timings: QueryTimingsOut) -> np.ndarray:
        return self._timed(timings, lambda: self._encoder().encode_images([picture])[0])

    @staticmethod
    def _timed(timings: QueryTimingsOut, encode: Callable[[], np.ndarray]) -> np.ndarray:
        began = time.perf_counter()
        vector = encode()
        timings.model_ms += (time.perf_counter() - began) * 1000
        return vector

    def _retrieve(self, tenant_id: str, mode: str, vector: np.ndarray, look: QueryLook, conditions: list[Condition],
                  options: SearchOptions, started: float, timings: QueryTimingsOut) -> SearchEnvelope:
        predicted = self._classifier().classify(vector)
        # An explicit profile is the caller saying what the shopper is after: it is the query's family.
        family = FamilyGuess(options.profile, 1.0) if options.profile else predicted
        profile = self.profiles[family.family]
        with timed(INDEX_QUERY_SECONDS):
            hits = self._index().query(tenant_id, vector, max(options.limit, profile.candidate_pool), conditions)
        query = QuerySignals(family, look.colour_hist, look.colour_name, look.aspect_ratio)
        ranking = rank(hits, query, profile, self.rules.active(tenant_id))
        results = [self._result(c, query, mode, options.explain) for c in ranking.ranked
                   if c.score >= options.threshold][:options.limit]
        took_ms = round((time.perf_counter() - started) * 1000, 2)
        SEARCH_SECONDS.labels(mode).observe(took_ms / 1000)
        envelope = SearchEnvelope(
            search_id=f"srch_{uuid.uuid4().hex[:20]}", mode=mode, profile=profile.name,
            profile_confidence=family.confidence, took_ms=took_ms,
            timings=QueryTimingsOut(model_ms=round(timings.model_ms, 2), transcribe_ms=round(timings.transcribe_ms, 2)),
            gated=ranking.gated if options.explain else None, results=results)
        self._log(tenant_id, envelope)
        return envelope

    @staticmethod
    def _result(candidate: RankedCandidate, query: QuerySignals, mode: str, explain_it: bool) -> SearchHit:
        hit = SearchHit(id=candidate.hit.product_id, similarity_score=candidate.score,
                        metadata=candidate.hit.payload.get("metadata", {}))
        if explain_it:
            hit.match_breakdown = MatchBreakdown(signals=candidate.signals, weights=candidate.weights,
                                                 gates=candidate.gates)
            hit.explanation = explain(candidate, query, visual=mode not in TEXT_MODES)
        return hit

    def _log(self, tenant_id: str, envelope: SearchEnvelope) -> None:
        self.log_writer.write(SearchLog(id=envelope.search_id, tenant_id=tenant_id, mode=envelope.mode,
                                        profile=envelope.profile, product_ids=[r.id for r in envelope.results],
                                        took_ms=envelope.took_ms))


TEXT_MODES = ("text", "voice")


def _fused_look(picture: Image.Image, text: str, image_weight: float) -> QueryLook:
    """Shape from the picture; colour from the text when it names one (the shopper said what they want)."""
    image_look = QueryLook.of_images([picture]) if image_weight > 0 else QueryLook()
    text_look = QueryLook.of_text(text) if image_weight < 1 else QueryLook()
    colour = text_look if text_look.colour_hist is not None else image_look
    return QueryLook(colour.colour_hist, colour.colour_name, image_look.aspect_ratio)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm < 1e-6:
        raise InvalidRequest("the image and text cancel each other out; change image_weight",
                             code="degenerate_query")
    return (vector / norm).astype(np.float32)
