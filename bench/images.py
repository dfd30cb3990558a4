"""Several images per product on the embedded default (Qdrant Edge): which layout?

    .venv/bin/python bench/images.py --products 20000 --images 5 --dim 512 --queries 300

Three shards built in the same run from the same clustered unit vectors (no CLIP needed):
- `single`: today's layout, one point per product with its main image (N x 1), the baseline;
- `multi`:  one point per product holding every image as a multivector, scored with MaxSim (a one-vector
            query against it is the cosine of the closest image);
- `multi+main`: the same shard searched as the service does, the main image's dense vector and the multivector in
            one batched call, each product scored by its best leg (a catalogue whose products have one image
            each needs no multivector, so existing products work without a re-encode);
- `points`: one point per image, the nearest `limit x images` fetched and collapsed by product in Python
            (Edge has no group-by).
Each has its HNSW graph built (`optimize()`, as a catalogue at rest has it). The queries, a shopper's photo of
some view of some product (one of its images plus noise), are interleaved over the three shards, so the
latency ratios hold under a shared machine's load. Recall@10 is against exact closest-image search (numpy).
Memory per image is the shard's size on disk after the build (vectors, graph, payload, ids), / images.
"""

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import qdrant_edge as qe

from bench._common import clustered_vectors, percentiles

_BATCH = 500
_LIMIT = 10


def product_images(products: int, images: int, dim: int, seed: int = 0) -> np.ndarray:
    """(products, images, dim): each product's views spread around the product's own centre, the centres clustered
    like real catalogue embeddings (views of one product are closer to each other than to other products')."""
    rng = np.random.default_rng(seed + 1)
    centres = clustered_vectors(products, dim, seed=seed)
    views = centres[:, None, :] + 0.5 * rng.standard_normal((products, images, dim)).astype(np.float32) / np.sqrt(dim)
    return views / np.linalg.norm(views, axis=2, keepdims=True)


def create(path: Path, dim: int, multi: bool) -> qe.EdgeShard:
    """`multi`: the main image's dense vector `v` beside the multivector `m` of every image (the service's layout)."""
    vectors = {"v": qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)}
    if multi:
        vectors["m"] = qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine,
                                           multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim))
    return qe.EdgeShard.create(str(path), qe.EdgeConfig(vectors=vectors))


def fill(shard: qe.EdgeShard, points: list[qe.Point]) -> None:
    for start in range(0, len(points), _BATCH):
        shard.update(qe.UpdateOperation.upsert_points(points[start:start + _BATCH]))
    shard.optimize()
    shard.flush()


def size_on_disk(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build(root: Path, views: np.ndarray, wanted: list[str]) -> dict[str, tuple[qe.EdgeShard, Path, float]]:
    products, images, dim = views.shape
    layouts: dict[str, tuple[bool, Callable[[], list[qe.Point]]]] = {
        "single": (False, lambda: [qe.Point(p, {"v": views[p, 0].tolist()}, {"product": p})
                                   for p in range(products)]),
        "multi": (True, lambda: [qe.Point(p, {"v": views[p, 0].tolist(), "m": views[p].tolist()}, {"product": p})
                                 for p in range(products)]),
        "points": (False, lambda: [qe.Point(p * images + i, {"v": views[p, i].tolist()}, {"product": p})
                                   for p in range(products) for i in range(images)]),
    }
    built = {}
    for name, (multi, points) in layouts.items():
        if name not in wanted:
            continue
        path = root / name
        started = time.perf_counter()
        shard = create(path, dim, multi)
        fill(shard, points())
        seconds = time.perf_counter() - started
        built[name] = (shard, path, seconds)
        print(f"  built {name:10s} in {seconds:6.1f}s", flush=True)
    if "multi" in built:
        built["multi+main"] = built["multi"]  # the same shard, searched on both legs as the service does
    return built


def search(shard: qe.EdgeShard, name: str, query: list[float], images: int) -> list[int]:
    """The best `_LIMIT` products, each once."""
    if name == "multi":
        found = shard.query(qe.QueryRequest(limit=_LIMIT, query=qe.Query.Nearest([query], using="m"),
                                            with_payload=True))
        return [int(p.payload["product"]) for p in found]  # type: ignore[index]
    if name == "multi+main":  # the main images of every product, and every image of the products that have several
        legs = shard.query_batch(qe.QueryBatchRequest([
            qe.QueryRequest(limit=_LIMIT, query=qe.Query.Nearest(query, using="v"), with_payload=True),
            qe.QueryRequest(limit=_LIMIT, query=qe.Query.Nearest([query], using="m"), with_payload=True)]))
        best: dict[int, float] = {}
        for point in (p for leg in legs for p in leg):
            product = int(point.payload["product"])  # type: ignore[index]
            best[product] = max(best.get(product, -1.0), point.score)
        return sorted(best, key=lambda p: -best[p])[:_LIMIT]
    limit = _LIMIT * (images if name == "points" else 1)
    found = shard.query(qe.QueryRequest(limit=limit, query=qe.Query.Nearest(query, using="v"), with_payload=True))
    seen: list[int] = []
    for point in found:
        product = int(point.payload["product"])  # type: ignore[index]
        if product not in seen:
            seen.append(product)
    return seen[:_LIMIT]


def exact(views: np.ndarray, query: np.ndarray) -> list[int]:
    closest = (views @ query).max(axis=1)
    return [int(p) for p in np.argsort(-closest)[:_LIMIT]]


def run(products: int, images: int, dim: int, queries: int, wanted: list[str]) -> None:
    print(f"\n{products:,} products x {images} images, {dim}-d (baseline: {products:,} x 1)", flush=True)
    views = product_images(products, images, dim)
    rng = np.random.default_rng(7)
    shown = views[rng.integers(0, products, queries), rng.integers(0, images, queries)]
    photos = shown + 0.6 * rng.standard_normal(shown.shape).astype(np.float32) / np.sqrt(dim)
    photos /= np.linalg.norm(photos, axis=1, keepdims=True)
    root = Path(tempfile.mkdtemp(prefix="trooply-bench-images-"))
    try:
        built = build(root, views, wanted)
        latencies: dict[str, list[float]] = {name: [] for name in built}
        recalls: dict[str, list[float]] = {name: [] for name in built}
        for i, photo in enumerate(photos):
            query = photo.tolist()
            truth = {"single": exact(views[:, :1], photo), "multi": exact(views, photo)}
            truth["points"] = truth["multi+main"] = truth["multi"]
            names = list(built)
            for name in names[i % len(names):] + names[:i % len(names)]:  # each layout first in turn
                shard = built[name][0]
                started = time.perf_counter()
                found = search(shard, name, query, images)
                if i >= 5:  # warm-up
                    latencies[name].append((time.perf_counter() - started) * 1000)
                recalls[name].append(len(set(found) & set(truth[name])) / _LIMIT)
        base95 = percentiles(latencies["single"])[1]
        for name, (shard, path, seconds) in built.items():
            p50, p95 = percentiles(latencies[name])
            stored = products * (1 if name == "single" else images)
            print(f"  {name:10s} recall@10 {np.mean(recalls[name]):.3f}   p50 {p50:6.2f} ms   p95 {p95:6.2f} ms "
                  f"({p95 / base95:.2f}x single)   {size_on_disk(path) / stored:7.0f} bytes/image   "
                  f"build {seconds:.0f}s")
            if name != "multi":  # closed with multi+main, its same shard
                shard.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, nargs="+", default=[20000])
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--layouts", nargs="+", default=["single", "multi", "points"],
                        help="single is the baseline; multi also gives multi+main (the service's layout)")
    args = parser.parse_args()
    for count in args.products:
        run(count, args.images, args.dim, args.queries, ["single", *args.layouts])


if __name__ == "__main__":
    main()
