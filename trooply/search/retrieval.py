"""Retrieval: asking the live spaces for a query's candidates, pre-filtered. Vectors alone, or with words both legs
in one hybrid call, fused before re-ranking (search/reranking.py ranks and pages them)."""

from trooply.index.base import HybridQuery, IndexHit
from trooply.index.images import by_closest_image
from trooply.observability import INDEX_QUERY_SECONDS, timed
from trooply.ranking.engine import QuerySignals
from trooply.search.context import SearchContext
from trooply.search.fusion import (
    RRF_K,
    FusionMethod,
    fuse,
    pictures_candidates,
    words_candidates,
    words_min_score,
)
from trooply.search.prepared_query import PreparedQuery
from trooply.spaces.live import LiveSpaces


class Retriever:
    def __init__(self, spaces: LiveSpaces, fusion: FusionMethod = "rrf", rrf_k: int = RRF_K) -> None:
        self.spaces = spaces
        self.fusion = fusion
        self.rrf_k = rrf_k

    def candidates(self, context: SearchContext, query: PreparedQuery, signals: QuerySignals,
                   pool: int) -> tuple[list[IndexHit], bool, frozenset[str]]:
        """The pre-filtered candidates, whether the index has no more, and the exact identifier matches (pinned
        first). With words, both legs in one call, fused before re-ranking."""
        with_vectors = context.options.diversity > 0
        if not signals.matches_words or query.words is None:
            with timed(INDEX_QUERY_SECONDS):
                by_vector = [self.spaces.query(context.tenant_id, vector, pool, query.conditions, with_vectors)
                             for vector in (query.vector, *query.more_vectors)]
            return by_closest_image(by_vector[0], [hit for leg in by_vector[1:] for hit in leg], pool), \
                all(len(leg) < pool for leg in by_vector), frozenset()
        weight = signals.keyword_weight
        words_limit = words_candidates(pool, weight)
        pictures_limit = pictures_candidates(pool, weight, context.options.limit)
        request = HybridQuery(query.vector, pictures_limit, query.words.vector, query.words.identifier,
                              query.conditions, with_vectors, words_limit, words_min_score(weight))
        with timed(INDEX_QUERY_SECONDS):
            found = self.spaces.hybrid_query(context.tenant_id, request)
        legs = [(leg, wanted) for leg, wanted, used in ((found.pictures, pictures_limit, weight < 1),
                                                        (found.words, words_limit, weight > 0)) if used]
        exhausted = all(len(leg) < wanted for leg, wanted in legs)
        return (fuse(found, weight, 2 * pool, self.fusion, self.rrf_k), exhausted,
                frozenset(hit.product_id for hit in found.exact))
