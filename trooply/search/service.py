"""The search modes: each opens one context for the request, builds its query (trooply.search.query_builder) and
answers it: candidates from the live spaces (trooply.search.retrieval), ranked and paged (trooply.search.reranking),
as hits (trooply.search.hits), logged (trooply.search.log_writer).

Privacy: query images and audio live only in memory (bytes ▸ pixels ▸ vector) and are dropped after
the request; the search log keeps ids, mode, profile and timings, and a text query or transcript only normalised
for analytics (TROOPLY_ANALYTICS_QUERY_TEXT), never an image, its URL or audio.
"""

import uuid
from collections.abc import Callable, Sequence

from trooply.config import Settings
from trooply.db import Database
from trooply.errors import InvalidRequest
from trooply.index.filters import check_group_field, parse_filters
from trooply.index.words import DEFAULT_LANGUAGE
from trooply.observability import SEARCH_SECONDS
from trooply.ranking.engine import QuerySignals
from trooply.search.context import SearchContext
from trooply.search.encoders import QueryEncoders
from trooply.search.hits import search_hit
from trooply.search.log_writer import SearchLogWriter, search_log
from trooply.search.phrases import QueryReader
from trooply.search.prepared_query import PreparedQuery
from trooply.search.query_builder import QueryBuilder
from trooply.search.reranking import RankingSetup, Reranker, keyword_weight
from trooply.search.retrieval import Retriever
from trooply.search.schemas import (
    DetectionOut,
    FusionSearchRequest,
    ReadableQuery,
    SearchEnvelope,
    SearchOptions,
)
from trooply.spaces.live import LiveSpaces
from trooply.vision.query_image import QueryImage


class SearchService:
    def __init__(self, encoders: QueryEncoders, spaces: LiveSpaces, ranking: RankingSetup,
                 db: Database, settings: Settings,
                 languages: Callable[[str], str] = lambda _tenant_id: DEFAULT_LANGUAGE) -> None:
        self.profiles = ranking.profiles
        self.ranking = ranking
        self.log_writer = SearchLogWriter(db)
        self.keep_query_text = settings.analytics.query_text
        self.queries = QueryBuilder(encoders, QueryReader(ranking.profiles), spaces, db, languages)
        self.retriever = Retriever(spaces, settings.ranking.hybrid_fusion, settings.ranking.hybrid_rrf_k)
        self.reranker = Reranker(self.retriever, settings.discovery.search_max_candidates)
        self.encoders = encoders

    def search_text(self, tenant_id: str, query: str, options: SearchOptions, interpret: bool = True) -> SearchEnvelope:
        context = self._begin(tenant_id, options, interpret)
        return self._answer(context, self.queries.text_query(context, "text", query))

    def search_similar(self, tenant_id: str, product_id: str, options: SearchOptions) -> SearchEnvelope:
        context = self._begin(tenant_id, options)
        return self._answer(context, self.queries.similar(context, product_id))

    def search_image(self, tenant_id: str, image: QueryImage, options: SearchOptions, detect: bool = False,
                     detect_class: int | None = None) -> SearchEnvelope:
        context = self._begin(tenant_id, options)
        query, used = self.queries.image(context, image, detect, detect_class)
        envelope = self._answer(context, query)
        if detect:
            envelope.detection = DetectionOut.of(used) if used is not None else None
        return envelope

    def search_crop(self, tenant_id: str, image: QueryImage, bbox: Sequence[float],
                    options: SearchOptions) -> SearchEnvelope:
        context = self._begin(tenant_id, options)
        return self._answer(context, self.queries.crop(context, image, bbox))

    def search_multi(self, tenant_id: str, images: Sequence[QueryImage], options: SearchOptions) -> SearchEnvelope:
        context = self._begin(tenant_id, options)
        return self._answer(context, self.queries.multi(context, images))

    def search_fusion(self, tenant_id: str, image: QueryImage, text: str, image_weight: float,
                      options: SearchOptions, interpret: bool = True) -> SearchEnvelope:
        context = self._begin(tenant_id, options, interpret)
        return self._answer(context, self.queries.fusion(context, image, text, image_weight))

    def search_voice(self, tenant_id: str, audio: bytes, options: SearchOptions,
                     interpret: bool = True) -> SearchEnvelope:
        context = self._begin(tenant_id, options, interpret)  # a bad filter costs no Whisper pass
        transcript = self.encoders.transcript(context, audio)
        envelope = self._answer(context, self.queries.text_query(context, "voice", transcript))
        envelope.transcript = transcript
        return envelope

    def _answer(self, context: SearchContext, query: PreparedQuery) -> SearchEnvelope:
        """From a prepared query to the response: its profile and signals, the ranked page, its hits, the log."""
        options = context.options
        family = self.ranking.family_of(context, query)
        profile = self.ranking.profiles[family.family]
        weight, fallback = keyword_weight(query, profile)
        signals = QuerySignals(family, colour=query.look.colour, aspect_ratio=query.look.aspect_ratio,
                               words=query.words if weight else None, keyword_weight=weight or 0.0)
        rules = self.ranking.rules.active(context.tenant_id)
        ranking, page = self.reranker.page(context, query, signals, profile, rules)
        results = [search_hit(entry, signals, query.mode, options.explain) for entry in page]
        took_ms = context.took_ms()
        SEARCH_SECONDS.labels(query.mode).observe(took_ms / 1000)
        envelope = SearchEnvelope(
            search_id=f"srch_{uuid.uuid4().hex[:20]}", mode=query.mode, profile=profile.name,
            profile_confidence=family.confidence, profile_source=family.source, took_ms=took_ms,
            timings=context.timings(),
            gated=ranking.gated if options.explain else None, gates_relaxed=ranking.relaxed,
            interpreted=query.interpreted, group_by=options.group_by, keyword_weight=weight,
            keywords_fallback=fallback, results=results)
        self.log_writer.write(search_log(envelope, context.tenant_id, query.text if self.keep_query_text else None))
        return envelope

    def _begin(self, tenant_id: str, options: SearchOptions, interpret: bool = True) -> SearchContext:
        """The request's context, its options checked first: a bad profile, group field or filter is a 4xx
        before any model runs (a query image URL is fetched by the router before this)."""
        if options.profile is not None and options.profile not in self.profiles:
            raise InvalidRequest(f"unknown profile {options.profile!r}; use one of {', '.join(self.profiles)}",
                                 code="unknown_profile")
        if options.group_by is not None:
            check_group_field(options.group_by)
        keyword_weight = options.keyword_weight if isinstance(options, (ReadableQuery, FusionSearchRequest)) else None
        return SearchContext(tenant_id, options, parse_filters(options.filters), interpret, keyword_weight)
