"""Fusing the pictures' and the words' candidates: order on hand-made cases, both methods, the weights' ends."""

import pytest

from trooply.index.base import HybridHits, IndexHit
from trooply.search.fusion import MIN_WORDS_SCORE, fuse, pictures_candidates, words_candidates, words_min_score


def hit(product_id: str, cosine: float, words_score: float | None = None) -> IndexHit:
    return IndexHit(product_id, cosine, {"product_id": product_id}, None, words_score)


# Pictures: a > b > c. Words: c > d > a.
LEGS = HybridHits(pictures=[hit("a", 0.9), hit("b", 0.8), hit("c", 0.7)],
                  words=[hit("c", 0.7, 9.0), hit("d", 0.1, 4.0), hit("a", 0.9, 1.0)], exact=[])


def order(hits: list[IndexHit]) -> list[str]:
    return [h.product_id for h in hits]


@pytest.mark.parametrize("method", ["rrf", "dbsf"])
def test_weight_zero_is_the_pictures_order_and_one_the_words_order(method: str) -> None:
    assert order(fuse(LEGS, 0.0, 10, method)) == ["a", "b", "c"]
    assert order(fuse(LEGS, 1.0, 10, method)) == ["c", "d", "a"]


def test_rrf_adds_each_legs_reciprocal_rank() -> None:
    # Equal weights, k=60: a = 1/61 + 1/63, c = 1/63 + 1/61 (tie, pictures' first seen), b = 1/62, d = 1/62.
    assert order(fuse(LEGS, 0.5, 10, "rrf")) == ["a", "c", "b", "d"]
    # Words leading: c (0.3/63 + 0.7/61) ahead of a (0.3/61 + 0.7/63).
    assert order(fuse(LEGS, 0.7, 10, "rrf"))[:2] == ["c", "a"]
    # A small k makes the top ranks count more: at k=1 d (words' second) passes b (pictures' second) sooner.
    assert order(fuse(LEGS, 0.55, 10, "rrf", rrf_k=1))[2:] == ["d", "b"]


def test_dbsf_maps_each_legs_scores_by_mean_and_three_deviations() -> None:
    # Pictures 0.9, 0.8, 0.7 -> a 0.704, b 0.5, c 0.296; words 9, 4, 1 -> c 0.719, d 0.466, a 0.314.
    assert order(fuse(LEGS, 0.5, 10, "dbsf")) == ["a", "c", "b", "d"]  # a 0.509, c 0.507, b 0.25, d 0.233
    assert order(fuse(LEGS, 0.6, 10, "dbsf")) == ["c", "a", "d", "b"]  # c 0.550, a 0.470, d 0.280, b 0.2
    # One leg of equal scores says nothing about order: each gets the middle.
    flat = HybridHits([hit("a", 0.5), hit("b", 0.5)], [hit("b", 0.5, 2.0), hit("a", 0.5, 1.0)], [])
    assert order(fuse(flat, 0.5, 10, "dbsf")) == ["b", "a"]


def test_a_product_found_by_both_legs_keeps_its_cosine_and_its_words_score() -> None:
    fused = {h.product_id: h for h in fuse(LEGS, 0.5, 10)}
    assert (fused["a"].score, fused["a"].words_score) == (0.9, 1.0)
    assert (fused["b"].score, fused["b"].words_score) == (0.8, None)


def test_exact_identifier_matches_come_first_and_the_limit_holds() -> None:
    legs = HybridHits(LEGS.pictures, LEGS.words, exact=[hit("z", 0.1)])
    assert order(fuse(legs, 0.5, 3)) == ["z", "a", "c"]
    assert order(fuse(HybridHits(LEGS.pictures, LEGS.words, exact=[hit("b", 0.8)]), 0.5, 10))[0] == "b"


@pytest.mark.parametrize("pool, weight, wanted", [
    (30, 1.0, 30),  # words only: the whole pool
    (30, 0.3, 10),  # its share, at least MIN_WORDS_CANDIDATES
    (120, 0.3, 36),  # a grown pool (grouping): its share
    (30, 0.05, 10), (5, 0.3, 5),  # never more than the pool
])
def test_the_words_leg_brings_its_share_of_the_pool(pool: int, weight: float, wanted: int) -> None:
    assert words_candidates(pool, weight) == wanted


@pytest.mark.parametrize("pool, weight, page, wanted", [
    (30, 0.3, 10, 20),  # the rest of the pool: about the pool is re-ranked, as in a pictures-only search
    (120, 0.3, 10, 84),  # a grown pool (grouping)
    (30, 0.9, 10, 10), (30, 1.0, 10, 10), (60, 0.3, 50, 50),  # never fewer than a page
])
def test_the_pictures_leg_brings_the_rest_of_the_pool(pool: int, weight: float, page: int, wanted: int) -> None:
    assert pictures_candidates(pool, weight, page) == wanted


def test_words_only_keeps_every_words_hit_and_hybrid_only_those_with_some_evidence() -> None:
    assert words_min_score(1.0) is None  # words only: all the words can answer
    assert words_min_score(0.3) == words_min_score(0.99) == MIN_WORDS_SCORE > 0
