"""From a prepared query to the response: choose the profile, pre-filtered ANN, re-rank, page, explain, log."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from trooply.analytics.counting import normalise_query
from trooply.catalog.gallery import matched_image
from trooply.db import utcnow
from trooply.index.base import HybridQuery, IndexHit, VectorIndex
from trooply.index.images import by_closest_image
from trooply.index.words import lexicon
from trooply.observability import INDEX_QUERY_SECONDS, SEARCH_SECONDS, timed
from trooply.ranking.engine import MerchandisingRule, QuerySignals, Ranking, rank
from trooply.ranking.explain import explain
from trooply.ranking.families import FamilyClassifier, FamilyGuess
from trooply.ranking.profiles import ScoringProfile
from trooply.ranking.rules import RuleService
from trooply.search.context import SearchContext
from trooply.search.fusion import RRF_K, FusionMethod, fuse, pictures_candidates, words_candidates
from trooply.search.log_writer import SearchLogWriter
from trooply.search.models import SearchLog
from trooply.search.page import PageEntry, diversified, grouped
from trooply.search.prepared_query import PreparedQuery
from trooply.search.schemas import MatchBreakdown, MatchedImage, SearchEnvelope, SearchHit

TEXT_MODES = ("text", "voice")
NO_SEARCHABLE_WORDS = "no_searchable_words"


@dataclass(frozen=True)
class RankingSetup:
    """What re-ranking reads besides the hits: the scoring profiles, the family classifier that picks one per
    query, and each tenant's merchandising rules."""

    profiles: dict[str, ScoringProfile]
    classifier: FamilyClassifier
    rules: RuleService

    def family_of(self, context: SearchContext, query: PreparedQuery) -> FamilyGuess:
        # An explicit profile is the caller saying what the shopper is after: it is the query's family.
        if context.options.profile:
            return FamilyGuess(context.options.profile, 1.0, "request")
        return query.family or self.classifier.classify(query.vector)


class Retriever:
    def __init__(self, index: Callable[[], VectorIndex], ranking: RankingSetup, log_writer: SearchLogWriter,
                 max_candidates: int, fusion: FusionMethod = "rrf", rrf_k: int = RRF_K,
                 keep_query_text: bool = True) -> None:
        self._index = index
        self.keep_query_text = keep_query_text
        self.ranking = ranking
        self.log_writer = log_writer
        self.max_candidates = max_candidates
        self.fusion = fusion
        self.rrf_k = rrf_k

    def retrieve(self, context: SearchContext, query: PreparedQuery) -> SearchEnvelope:
        options = context.options
        family = self.ranking.family_of(context, query)
        profile = self.ranking.profiles[family.family]
        keyword_weight, fallback = _keyword_weight(query, profile)
        signals = QuerySignals(family, colour=query.look.colour, aspect_ratio=query.look.aspect_ratio,
                               words=query.words if keyword_weight else None, keyword_weight=keyword_weight or 0.0)
        ranking, page = self._page(context, query, signals, profile, self.ranking.rules.active(context.tenant_id))
        results = [_result(entry, signals, query.mode, options.explain) for entry in page]
        took_ms = context.took_ms()
        SEARCH_SECONDS.labels(query.mode).observe(took_ms / 1000)
        envelope = SearchEnvelope(
            search_id=f"srch_{uuid.uuid4().hex[:20]}", mode=query.mode, profile=profile.name,
            profile_confidence=family.confidence, profile_source=family.source, took_ms=took_ms,
            timings=context.timings(),
            gated=ranking.gated if options.explain else None, gates_relaxed=ranking.relaxed,
            interpreted=query.interpreted, group_by=options.group_by, keyword_weight=keyword_weight,
            keywords_fallback=fallback, results=results)
        self.log_writer.write(SearchLog(id=envelope.search_id, tenant_id=context.tenant_id, mode=envelope.mode,
                                        profile=envelope.profile, product_ids=[r.id for r in envelope.results],
                                        took_ms=envelope.took_ms, created_at=utcnow(),
                                        query=normalise_query(query.text) if self.keep_query_text else None))
        return envelope

    def _page(self, context: SearchContext, query: PreparedQuery, signals: QuerySignals, profile: ScoringProfile,
              rules: list[MerchandisingRule]) -> tuple[Ranking, list[PageEntry]]:
        """Candidates ranked, thresholded, grouped and diversified. Grouping can leave the page short: then
        more candidates are fetched, up to `search_max_candidates`."""
        options = context.options
        pool = max(options.limit, profile.candidate_pool) + (query.exclude is not None)
        most = max(pool, self.max_candidates)
        while True:
            hits, exhausted, pinned = self._candidates(context, query, signals, pool)
            hits = [_signals_of_matched_image(hit) for hit in hits]
            ranking = rank([h for h in hits if h.product_id != query.exclude], signals, profile, rules, pinned)
            page = grouped([c for c in ranking.ranked if c.score >= options.threshold], options.group_by,
                           options.group_size)
            if options.group_by is None or len(page) >= options.limit or exhausted or pool >= most:
                return ranking, diversified(page, options.diversity, options.limit)
            pool = min(most, pool * 4)

    def _candidates(self, context: SearchContext, query: PreparedQuery, signals: QuerySignals,
                    pool: int) -> tuple[list[IndexHit], bool, frozenset[str]]:
        """The pre-filtered candidates, whether the index has no more, and the exact identifier matches (pinned
        first). With words, both legs in one call, fused before re-ranking."""
        with_vectors = context.options.diversity > 0
        if not signals.matches_words or query.words is None:
            with timed(INDEX_QUERY_SECONDS):
                by_vector = [self._index().query(context.tenant_id, vector, pool, query.conditions, with_vectors)
                             for vector in (query.vector, *query.more_vectors)]
            return by_closest_image(by_vector[0], [hit for leg in by_vector[1:] for hit in leg], pool), \
                all(len(leg) < pool for leg in by_vector), frozenset()
        weight = signals.keyword_weight
        words_limit = words_candidates(pool, weight)
        pictures_limit = pictures_candidates(pool, weight, context.options.limit)
        request = HybridQuery(query.vector, pictures_limit, query.words.vector, query.words.identifier,
                              query.conditions, with_vectors, words_limit)
        with timed(INDEX_QUERY_SECONDS):
            found = self._index().hybrid_query(context.tenant_id, request)
        legs = [(leg, wanted) for leg, wanted, used in ((found.pictures, pictures_limit, weight < 1),
                                                        (found.words, words_limit, weight > 0)) if used]
        exhausted = all(len(leg) < wanted for leg, wanted in legs)
        return (fuse(found, weight, 2 * pool, self.fusion, self.rrf_k), exhausted,
                frozenset(hit.product_id for hit in found.exact))


def _keyword_weight(query: PreparedQuery, profile: ScoringProfile) -> tuple[float | None, str | None]:
    """The share of words this search uses (None: a mode without words), and why it uses none when it has some."""
    if query.words is None:
        return None, None
    if not query.words.vector:
        return 0.0, NO_SEARCHABLE_WORDS  # only stop words or punctuation: pictures only
    if query.keyword_weight is not None:
        return query.keyword_weight, None
    # The profile's share of words, as much as the query is words: a fusion search led by its image weighs them less.
    return round(profile.keyword_weight * query.text_share, 4), None


def _signals_of_matched_image(hit: IndexHit) -> IndexHit:
    """Ranking reads the colour and aspect of the image that matched, not always the main one's."""
    if hit.image_position == 0:
        return hit
    return replace(hit, payload={**hit.payload, "image": matched_image(hit.payload, hit.image_position)["image"]})


def _result(entry: PageEntry, query: QuerySignals, mode: str, explain_it: bool) -> SearchHit:
    candidate = entry.candidate
    matched = matched_image(candidate.hit.payload, candidate.hit.image_position)
    hit = SearchHit(id=candidate.hit.product_id, similarity_score=candidate.score,
                    metadata=candidate.hit.payload.get("metadata", {}), group=entry.group,
                    matched_image=MatchedImage(url=matched["url"], position=matched["position"]))
    if explain_it:
        # Which words matched, and where, only for the page shown: ranking needed their BM25 score alone.
        words = (lexicon(query.words.language).match(query.words, candidate.hit.payload)
                 if query.words is not None and "keywords" in candidate.weights else None)
        hit.match_breakdown = MatchBreakdown(signals=candidate.signals, weights=candidate.weights,
                                             gates=candidate.gates, matched_terms=list(words.terms) if words else None)
        hit.explanation = explain(candidate, query, visual=mode not in TEXT_MODES, words=words)
    return hit
