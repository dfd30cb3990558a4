"""The query pipeline per mode: build a query vector, pre-filtered ANN, score, explain, log IDs only.

Privacy: query images and audio live only in memory (bytes ▸ pixels ▸ vector) and are dropped after
the request; the search log keeps ids, mode, profile and timings, never the query itself.
"""

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from trooply.catalog.repository import CatalogRepository
from trooply.config import Settings
from trooply.db import Database
from trooply.errors import Conflict, InvalidRequest, NotFound, TrooplyError
from trooply.index.base import Condition, VectorIndex
from trooply.index.filters import check_group_field, parse_filters
from trooply.items.service import ItemService
from trooply.observability import INDEX_QUERY_SECONDS, SEARCH_SECONDS, timed
from trooply.ranking.engine import NEAR_DUPLICATE_COSINE, MerchandisingRule, QuerySignals, Ranking, rank
from trooply.ranking.explain import explain
from trooply.ranking.families import FamilyClassifier, FamilyGuess
from trooply.ranking.profiles import ScoringProfile
from trooply.ranking.rules import RuleService
from trooply.search.log_writer import SearchLogWriter
from trooply.search.models import SearchLog
from trooply.search.page import PageEntry, diversified, grouped
from trooply.search.query import PreparedQuery, QueryLook, fused_look, unit
from trooply.search.query_reader import QueryReader, QueryReading
from trooply.search.schemas import (
    MAX_MULTI_IMAGES,
    MIN_MULTI_IMAGES,
    DetectionOut,
    InterpretedOut,
    MatchBreakdown,
    QueryTimingsOut,
    SearchEnvelope,
    SearchHit,
    SearchOptions,
)
from trooply.vision.decode import crop_image
from trooply.vision.encoder import ClipEncoder
from trooply.vision.query_image import QueryImage, QueryImageLoader


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
        self.reader = QueryReader(profiles)
        self.log_writer = SearchLogWriter(db)

    def search_text(self, tenant_id: str, query: str, options: SearchOptions, interpret: bool = True) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimingsOut()
        return self._retrieve(tenant_id, self._words("text", query, options, conditions, interpret, timings), options,
                              started, timings)

    def search_similar(self, tenant_id: str, product_id: str, options: SearchOptions) -> SearchEnvelope:
        """More like a catalogue product: its stored vector, colour and shape; no fetch, no encode."""
        started, conditions = time.perf_counter(), self._validate(options)
        stored = self._index().retrieve(tenant_id, [product_id])
        if not stored:
            raise self._not_searchable(tenant_id, product_id)
        product = stored[0]
        family = product.payload.get("family")
        known = FamilyGuess(family, product.payload.get("family_confidence", 1.0)) if family else None
        query = PreparedQuery("similar", product.vector, QueryLook.of_product(product.payload), conditions, known,
                              exclude=product_id)
        return self._retrieve(tenant_id, query, options, started, QueryTimingsOut())

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
        query = PreparedQuery("url" if image.url else "image", vector, QueryLook.of_images([picture]), conditions)
        envelope = self._retrieve(tenant_id, query, options, started, timings)
        if detect:
            envelope.detection = DetectionOut.of(used) if used is not None else None
        return envelope

    def search_crop(self, tenant_id: str, image: QueryImage, bbox: Sequence[float],
                    options: SearchOptions) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimingsOut()
        picture = crop_image(self.loader.decode(image), bbox)
        vector = self._embed(picture, timings)
        return self._retrieve(tenant_id, PreparedQuery("crop", vector, QueryLook.of_images([picture]), conditions),
                              options, started, timings)

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
        vector = unit(vectors.mean(axis=0))
        return self._retrieve(tenant_id, PreparedQuery("multi", vector, QueryLook.of_images(pictures), conditions),
                              options, started, timings)

    def search_fusion(self, tenant_id: str, image: QueryImage, text: str, image_weight: float,
                      options: SearchOptions, interpret: bool = True) -> SearchEnvelope:
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimingsOut()
        reading = self.reader.read(text) if interpret else None
        words = reading.text if reading else text
        picture = self.loader.load(image)
        image_vector = self._embed(picture, timings)
        read, reference = self._with_relative_price(tenant_id, reading, image_vector, options)
        applied = _applied(options, read)
        if words:
            text_vector = self._timed(timings, lambda: self._encoder().encode_text(words))
            vector = unit(image_weight * image_vector + (1.0 - image_weight) * text_vector)
        else:  # the text held only constraints ("like this, but cheaper"): the image is the whole query
            vector = image_vector
        # The profile follows whichever part leads the vector: a family word only when the text does.
        family = _named_family(reading) if image_weight < 0.5 else None
        interpreted = None
        if reading is not None:
            interpreted = InterpretedOut(text=words, filters=applied, colours=reading.colours, profile=reading.profile,
                                         cheaper_than=reference)
        query = PreparedQuery("fusion", vector, fused_look(picture, words, image_weight),
                              conditions + parse_filters(applied or None), family, interpreted=interpreted)
        return self._retrieve(tenant_id, query, options, started, timings)

    def search_voice(self, tenant_id: str, audio: bytes, options: SearchOptions,
                     interpret: bool = True) -> SearchEnvelope:
        # Validated before the audio is transcribed: a bad filter costs no Whisper pass.
        started, conditions, timings = time.perf_counter(), self._validate(options), QueryTimingsOut()
        heard_at = time.perf_counter()
        transcript = self._transcribe(audio)
        timings.transcribe_ms = (time.perf_counter() - heard_at) * 1000
        envelope = self._retrieve(tenant_id, self._words("voice", transcript, options, conditions, interpret, timings),
                                  options, started, timings)
        envelope.transcript = transcript
        return envelope

    def _words(self, mode: str, said: str, options: SearchOptions, conditions: list[Condition], interpret: bool,
               timings: QueryTimingsOut) -> PreparedQuery:
        """A text or transcript, read for constraints; CLIP encodes what remains (all of it if nothing does).
        `conditions`: the request's own filters, to which what was read is added."""
        reading = self.reader.read(said) if interpret else None
        applied = _applied(options, reading.filters if reading else {})
        conditions = conditions + parse_filters(applied or None)
        text = (reading.text if reading else "") or said
        vector = self._timed(timings, lambda: self._encoder().encode_text(text))
        interpreted = InterpretedOut(text=text, filters=applied, colours=reading.colours,
                                     profile=reading.profile) if reading else None
        return PreparedQuery(mode, vector, QueryLook.of_text(text), conditions, _named_family(reading),
                             interpreted=interpreted)

    def _validate(self, options: SearchOptions) -> list[Condition]:
        if options.profile is not None and options.profile not in self.profiles:
            raise InvalidRequest(f"unknown profile {options.profile!r}; use one of {', '.join(self.profiles)}",
                                 code="unknown_profile")
        if options.group_by is not None:
            check_group_field(options.group_by)
        return parse_filters(options.filters)

    def _with_relative_price(self, tenant_id: str, reading: QueryReading | None, image_vector: np.ndarray,
                             options: SearchOptions) -> tuple[dict[str, Any], str | None]:
        """The filters read, plus for "like this, but cheaper" a price below that of the catalogue product the
        image is a near-duplicate of, and that product's id."""
        read = dict(reading.filters) if reading else {}
        if reading is None or not reading.cheaper or "price" in read or "price" in (options.filters or {}):
            return read, None
        with timed(INDEX_QUERY_SECONDS):
            closest = self._index().query(tenant_id, image_vector, 1)
        if not closest or closest[0].score < NEAR_DUPLICATE_COSINE or closest[0].payload.get("price") is None:
            return read, None
        read["price"] = {"lt": float(closest[0].payload["price"])}
        return read, closest[0].product_id

    def _not_searchable(self, tenant_id: str, product_id: str) -> TrooplyError:
        with self.db.session() as session:
            record = CatalogRepository(session).get_product(tenant_id, product_id)
        if record is None:
            return NotFound(f"no product {product_id!r}", code="product_not_found")
        why = f" (its image failed: {record.error_code})" if record.error_code else ""
        return Conflict(f"product {product_id!r} is not indexed yet{why}; search for it once it is",
                        code="product_not_indexed", details={"status": record.status})

    def _embed(self, picture: Image.Image, timings: QueryTimingsOut) -> np.ndarray:
        return self._timed(timings, lambda: self._encoder().encode_images([picture])[0])

    @staticmethod
    def _timed(timings: QueryTimingsOut, encode: Callable[[], np.ndarray]) -> np.ndarray:
        began = time.perf_counter()
        vector = encode()
        timings.model_ms += (time.perf_counter() - began) * 1000
        return vector

    def _retrieve(self, tenant_id: str, query: PreparedQuery, options: SearchOptions, started: float,
                  timings: QueryTimingsOut) -> SearchEnvelope:
        # An explicit profile is the caller saying what the shopper is after: it is the query's family.
        family = (FamilyGuess(options.profile, 1.0) if options.profile
                  else query.family or self._classifier().classify(query.vector))
        profile = self.profiles[family.family]
        signals = QuerySignals(family, query.look.colour_hist, query.look.colour_name, query.look.aspect_ratio)
        ranking, page = self._page(tenant_id, query, signals, profile, self.rules.active(tenant_id), options)
        results = [self._result(entry, signals, query.mode, options.explain) for entry in page]
        took_ms = round((time.perf_counter() - started) * 1000, 2)
        SEARCH_SECONDS.labels(query.mode).observe(took_ms / 1000)
        envelope = SearchEnvelope(
            search_id=f"srch_{uuid.uuid4().hex[:20]}", mode=query.mode, profile=profile.name,
            profile_confidence=family.confidence, took_ms=took_ms,
            timings=QueryTimingsOut(model_ms=round(timings.model_ms, 2), transcribe_ms=round(timings.transcribe_ms, 2)),
            gated=ranking.gated if options.explain else None, gates_relaxed=ranking.relaxed,
            interpreted=query.interpreted, group_by=options.group_by, results=results)
        self._log(tenant_id, envelope)
        return envelope

    def _page(self, tenant_id: str, query: PreparedQuery, signals: QuerySignals, profile: ScoringProfile,
              rules: list[MerchandisingRule], options: SearchOptions) -> tuple[Ranking, list[PageEntry]]:
        """Candidates ranked, thresholded, grouped and diversified. Grouping can leave the page short: then
        more candidates are fetched, up to `search_max_candidates`."""
        pool = max(options.limit, profile.candidate_pool) + (query.exclude is not None)
        most = max(pool, self.settings.search_max_candidates)
        while True:
            with timed(INDEX_QUERY_SECONDS):
                hits = self._index().query(tenant_id, query.vector, pool, query.conditions,
                                           with_vectors=options.diversity > 0)
            exhausted = len(hits) < pool
            ranking = rank([h for h in hits if h.product_id != query.exclude], signals, profile, rules)
            page = grouped([c for c in ranking.ranked if c.score >= options.threshold], options.group_by,
                           options.group_size)
            if options.group_by is None or len(page) >= options.limit or exhausted or pool >= most:
                return ranking, diversified(page, options.diversity, options.limit)
            pool = min(most, pool * 4)

    @staticmethod
    def _result(entry: PageEntry, query: QuerySignals, mode: str, explain_it: bool) -> SearchHit:
        candidate = entry.candidate
        hit = SearchHit(id=candidate.hit.product_id, similarity_score=candidate.score,
                        metadata=candidate.hit.payload.get("metadata", {}), group=entry.group)
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


def _applied(options: SearchOptions, read: dict[str, Any]) -> dict[str, Any]:
    """The filters read from the words that the request's own filters leave standing (theirs win per field)."""
    return {field: spec for field, spec in read.items() if field not in (options.filters or {})}


def _named_family(reading: QueryReading | None) -> FamilyGuess | None:
    # The shopper typed the kind of product ("sneakers"): as sure as a family gets.
    return FamilyGuess(reading.profile, 1.0) if reading is not None and reading.profile else None
