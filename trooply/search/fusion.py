"""Fusing the pictures' and the words' candidates before re-ranking, weighted by the query's keyword_weight.

Both methods need no score calibration between the legs (a cosine and a BM25 score do not compare):
- weighted RRF: each leg adds `weight / (k + rank)`, rank from 1; a product found by both legs adds both;
- weighted DBSF: each leg's scores are mapped onto [0, 1] by mean ± 3 standard deviations, then summed weighted.
Products whose identifier is exactly the query come first, whatever the legs say.
"""

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Literal

from trooply.index.base import HybridHits, IndexHit

FusionMethod = Literal["rrf", "dbsf"]
RRF_K = 60
# The words leg brings its share of the pool (keyword_weight × pool), at least this many, and the pictures leg the
# rest: the union of both legs is re-ranked, and each candidate costs the engine a payload read and a scoring, so
# a hybrid search re-ranks about the profile's pool, as a pictures-only one does (bench/hybrid.py measured the
# pool doubled, then a third more, as the largest part of what hybrid added).
MIN_WORDS_CANDIDATES = 10
# In a hybrid search the words leg leaves out products whose BM25 score is below this: they hold only words (nearly)
# every product of the tenant has, whose IDF is ~0.5 / the catalogue's size against 2-10 for a word that tells
# products apart ("sku" in every "SKU-…" code of 100,000 products adds ~0.00001; a word held by 95% of them, matched
# once, ~0.05). Such hits say nothing, RRF would rank them by position as if they did, and each costs the engine a
# payload read. Words only (keyword_weight 1) keeps them: there they are all the words can answer.
MIN_WORDS_SCORE = 0.05


def words_candidates(pool: int, keyword_weight: float) -> int:
    """How many candidates the words leg brings for a pool of `pool`."""
    return min(pool, max(MIN_WORDS_CANDIDATES, math.ceil(pool * keyword_weight)))


def words_min_score(keyword_weight: float) -> float | None:
    """The words leg's least BM25 score: none for words only."""
    return MIN_WORDS_SCORE if keyword_weight < 1 else None


def pictures_candidates(pool: int, keyword_weight: float, page: int) -> int:
    """How many candidates the pictures leg brings: what the words leave of the pool, never fewer than a page."""
    return max(page, pool - words_candidates(pool, keyword_weight))


def fuse(hits: HybridHits, keyword_weight: float, limit: int, method: FusionMethod = "rrf",
         rrf_k: int = RRF_K) -> list[IndexHit]:
    """The best `limit` candidates: exact identifier matches first, then both legs fused; each hit keeps its cosine
    and, when the words found it, its BM25 score. A leg weighted 0 adds nothing (keyword_weight 1: words only)."""
    contribution = _rrf(rrf_k) if method == "rrf" else _dbsf
    found: dict[str, IndexHit] = {}
    fused: dict[str, float] = {}
    legs: list[tuple[list[IndexHit], float, Callable[[IndexHit], float]]] = [
        (hits.pictures, 1.0 - keyword_weight, lambda hit: hit.score),
        (hits.words, keyword_weight, lambda hit: hit.words_score or 0.0)]
    for leg, weight, score_of in legs:
        if weight <= 0:
            continue
        for hit, share in zip(leg, contribution([score_of(hit) for hit in leg]), strict=True):
            found[hit.product_id] = _merged(found.get(hit.product_id), hit)
            fused[hit.product_id] = fused.get(hit.product_id, 0.0) + weight * share
    exact = list(dict.fromkeys(hit.product_id for hit in hits.exact))
    for hit in hits.exact:
        found[hit.product_id] = _merged(found.get(hit.product_id), hit)
    ranked = sorted(fused, key=lambda product_id: fused[product_id], reverse=True)
    order = [*exact, *(p for p in ranked if p not in exact)]
    return [found[product_id] for product_id in order[:limit]]


def _merged(known: IndexHit | None, hit: IndexHit) -> IndexHit:
    if known is None:
        return hit
    lexical = known if known.words_score is not None else hit
    return replace(known, vector=known.vector if known.vector is not None else hit.vector,
                   words_score=lexical.words_score, words_coverage=lexical.words_coverage)


def _rrf(k: int) -> Callable[[Sequence[float]], list[float]]:
    return lambda scores: [1.0 / (k + rank) for rank in range(1, len(scores) + 1)]


def _dbsf(scores: Sequence[float]) -> list[float]:
    if not scores:
        return []
    mean = statistics.fmean(scores)
    spread = 3 * statistics.pstdev(scores)
    if spread == 0:
        return [0.5] * len(scores)
    low, high = mean - spread, mean + spread
    return [min(1.0, max(0.0, (score - low) / (high - low))) for score in scores]
