"""Grouping variants and maximal marginal relevance on constructed candidates (no model, no index)."""

import numpy as np

from trooply.index.base import IndexHit
from trooply.index.filters import filterable_payload
from trooply.ranking.engine import RankedCandidate
from trooply.search.page import diversified, grouped


def candidate(pid: str, score: float, vector=None, **metadata) -> RankedCandidate:
    payload = {"product_id": pid, **filterable_payload(metadata), "metadata": metadata}
    unit = None if vector is None else np.asarray(vector, np.float32) / np.linalg.norm(vector)
    return RankedCandidate(IndexHit(pid, score, payload, unit), score, {}, {})


def ids(page) -> list[str]:
    return [entry.candidate.hit.product_id for entry in page]


def test_group_by_keeps_the_best_of_each_group_and_says_its_value():
    ranked = [candidate("a1", 0.9, attributes={"group_id": "G-1"}),
              candidate("a2", 0.8, attributes={"group_id": "g-1"}),
              candidate("b1", 0.7, attributes={"group_id": "G-2"}), candidate("solo", 0.6),
              candidate("a3", 0.5, attributes={"group_id": "G-1"}),
              candidate("b2", 0.4, attributes={"group_id": "G-2"})]
    page = grouped(ranked, "attributes.group_id", 1)
    assert ids(page) == ["a1", "b1", "solo"], "G-1 and g-1 are one group (matched like filters); no id is no group"
    assert [entry.group for entry in page] == ["G-1", "G-2", None]
    assert ids(grouped(ranked, "attributes.group_id", 2)) == ["a1", "a2", "b1", "solo", "b2"]
    assert ids(grouped(ranked, None, 1)) == [c.hit.product_id for c in ranked]


def test_group_by_a_keyword_or_a_flag_reports_the_merchants_value():
    ranked = [candidate("x", 0.9, brand="Acme", in_stock=True), candidate("y", 0.8, brand="ACME", in_stock=False),
              candidate("z", 0.7, brand="Zen", in_stock=True)]
    assert [(e.candidate.hit.product_id, e.group) for e in grouped(ranked, "brand", 1)] == [("x", "Acme"), ("z", "Zen")]
    assert [e.group for e in grouped(ranked, "in_stock", 1)] == [True, False]


def test_diversity_zero_keeps_the_ranking_and_one_spreads_the_picks():
    near = [candidate(f"red-{i}", 0.9 - i / 100, [1, 0.05 * i, 0]) for i in range(4)]
    far = [candidate("blue", 0.7, [0, 1, 0]), candidate("green", 0.6, [0, 0, 1])]
    page = grouped(near + far, None, 1)
    assert ids(diversified(page, 0.0, 3)) == ["red-0", "red-1", "red-2"]
    assert ids(diversified(page, 1.0, 3)) == ["red-0", "blue", "green"], "equally far: the better ranked first"
    halfway = ids(diversified(page, 0.5, 3))
    assert halfway[0] == "red-0" and {"blue", "green"} & set(halfway[1:])
    assert len(diversified(page, 0.5, 10)) == len(page)
