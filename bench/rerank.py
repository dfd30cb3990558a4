"""Re-ranking cost: 30 candidates through every signal, the gates, blending and the explanations.
Target: p95 under 2 ms (everything heavy was precomputed at ingest and sits in the payload).

    .venv/bin/python bench/rerank.py --candidates 30 --runs 3000
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench._common import percentiles
from trooply.index.base import IndexHit
from trooply.index.filters import parse_filters
from trooply.ranking.engine import MerchandisingRule, QuerySignals, rank
from trooply.ranking.explain import explain
from trooply.ranking.families import FamilyGuess
from trooply.ranking.profiles import load_profiles
from trooply.vision.colour import text_target

FAMILIES = ("apparel", "footwear", "accessories")


def candidates(count: int, rng: np.random.Generator) -> list[IndexHit]:
    hits = []
    for i in range(count):
        shares = rng.dirichlet(np.ones(int(rng.integers(1, 4))))
        palette = [[float(rng.uniform(10, 95)), float(rng.uniform(-60, 60)), float(rng.uniform(-60, 60)), float(s)]
                   for s in shares]
        hits.append(IndexHit(f"p{i}", float(rng.uniform(0.1, 0.9)), {
            "product_id": f"p{i}", "brand": ("acme", "zenith")[i % 2], "price": float(10 + i), "in_stock": i % 2,
            "family": FAMILIES[i % 3], "family_confidence": float(rng.uniform(0.2, 1.0)),
            "popularity": float(rng.uniform(0.3, 0.8)),
            "image": {"colour_palette": palette, "aspect_ratio": float(rng.uniform(0.5, 2.0))},
            "metadata": {"title": f"Product {i}"}}))
    return hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    profile = load_profiles()["apparel"]
    hits = candidates(args.candidates, rng)
    query = QuerySignals(FamilyGuess("apparel", 0.8), text_target("red"), 0.75)
    rules = [MerchandisingRule(tuple(parse_filters({"brand": "acme"})), 0.5),
             MerchandisingRule(tuple(parse_filters({"price": {"gte": 30}})), -0.3),
             MerchandisingRule(tuple(parse_filters({"in_stock": True})), 0.2, profile="apparel")]
    samples = []
    for run in range(args.runs + 100):
        started = time.perf_counter()
        ranking = rank(hits, query, profile, rules)
        for candidate in ranking.ranked:
            explain(candidate, query, visual=True)
        if run >= 100:
            samples.append((time.perf_counter() - started) * 1000)
    p50, p95 = percentiles(samples)
    print(f"re-rank + explain {args.candidates} candidates ({len(ranking.gated)} gated): "
          f"p50 {p50:.3f} ms  p95 {p95:.3f} ms  (target p95 < 2 ms)")


if __name__ == "__main__":
    main()
