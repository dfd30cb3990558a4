"""Catalogue duplicates on the embedded default (Qdrant Edge): seconds to group 10k and 100k products,
how that scales, whether the planted near-copies are found, and the longest single index call (Qdrant
Edge holds the GIL for each: that is how long an embedded scan can stall the API).

    .venv/bin/python bench/duplicates.py --products 10000 100000 --dim 768

Vectors are clustered like real embeddings (same-cluster cosine ~0.9, below the threshold); 1% of the
products are near-copies (cosine ~0.99) of another product. Beyond `index_optimize_threshold` products the
shard gets its HNSW graph first (built in a child process, timed apart).
"""

import argparse
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench._common import clustered_vectors
from trooply.config import Settings
from trooply.duplicates.finder import find_duplicates
from trooply.index.base import IndexPoint
from trooply.index.edge import EdgeIndex
from trooply.vectors import VectorSpace

COPY_SHARE = 0.01
THRESHOLD = 0.97


def catalogue(count: int, dim: int, seed: int = 0) -> tuple[np.ndarray, set[tuple[str, str]]]:
    rng = np.random.default_rng(seed)
    vectors = clustered_vectors(count, dim, seed=seed)
    copies = rng.choice(count, size=2 * int(count * COPY_SHARE), replace=False).reshape(-1, 2)
    planted = set()
    for original, copy in copies:
        noisy = vectors[original] + 0.1 * rng.standard_normal(dim).astype(np.float32) / np.sqrt(dim)
        vectors[copy] = noisy / np.linalg.norm(noisy)
        planted.add(tuple(sorted((f"p{original}", f"p{copy}"))))
    return vectors, planted


def run(count: int, dim: int, settings: Settings) -> float:
    vectors, planted = catalogue(count, dim)
    data_dir = Path(tempfile.mkdtemp(prefix="trooply-bench-dups-"))
    index = EdgeIndex(data_dir, VectorSpace("bench", dim), settings.index.optimize_threshold)
    try:
        started = time.perf_counter()
        for start in range(0, count, 2000):
            index.upsert("t", [IndexPoint(f"p{i}", vectors[i], {"product_id": f"p{i}"})
                               for i in range(start, min(start + 2000, count))])
        loaded = time.perf_counter() - started
        if count >= settings.index.promotion_threshold:
            index.promote("t").result()  # a catalogue this big has its own shard once at rest
        if count >= settings.index.optimize_threshold:
            index.build_graph("t")  # and the HNSW graph of every point: the scan uses it
        built = time.perf_counter() - started - loaded
        longest, calls = [0.0], [0]
        neighbours = index.neighbours

        def timed_neighbours(*args, **kwargs):
            began = time.perf_counter()
            try:
                return neighbours(*args, **kwargs)
            finally:
                longest[0] = max(longest[0], time.perf_counter() - began)
                calls[0] += 1

        index.neighbours = timed_neighbours
        started = time.perf_counter()
        report = find_duplicates(index, "t", THRESHOLD, settings.discovery.duplicates_max_neighbours,
                                 settings.discovery.duplicates_batch_size)
        seconds = time.perf_counter() - started
    finally:
        index.close()
    found = {(p.a, p.b) for group in report.groups for p in group.pairs}
    recall = len(found & planted) / len(planted)
    print(f"\n{count:,} products, {dim}-d: upserted in {loaded:.1f} s, HNSW graph {built:.1f} s")
    print(f"  duplicates (cosine >= {THRESHOLD}): {seconds:.1f} s = {count / seconds:,.0f} products/s, "
          f"{len(report.groups):,} groups, planted pairs found {100 * recall:.1f}%, extra pairs "
          f"{len(found - planted):,}")
    print(f"  {calls[0]:,} batched index calls of at most {settings.discovery.duplicates_batch_size} products, "
          f"the longest "
          f"{longest[0] * 1000:.0f} ms")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=768, help="768: ViT-L-14, the default model; 512: ViT-B-32")
    parser.add_argument("--batch", type=int, help="products per index call (TROOPLY_DUPLICATES_BATCH_SIZE)")
    args = parser.parse_args()
    overrides = {"duplicates_batch_size": args.batch} if args.batch else {}
    settings = Settings(**overrides)
    timings = {count: run(count, args.dim, settings) for count in args.products}
    counts = sorted(timings)
    for small, large in pairwise(counts):
        print(f"\nscaling {small:,} -> {large:,} products ({large / small:.0f}x): "
              f"{timings[large] / timings[small]:.1f}x the time")


if __name__ == "__main__":
    main()
