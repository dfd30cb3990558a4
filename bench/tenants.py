"""Many small tenants in one embedded process (Qdrant Edge, the shared shard) next to one big tenant.

    .venv/bin/python bench/tenants.py --tenants 10000 --products 20 --dim 64

Builds two data directories: N tenants x M products (all in the shared shard), and one tenant holding the
same N x M products (promoted to its own shard). Each is then opened in a fresh process, which reports
its memory above an empty index opened the same way, its start-up (open + the first search), search
p50/p95 across random tenants (or of the one tenant), and an isolation sweep: one search per tenant,
counting hits that belong to another tenant. Targets: <= 1 GB above empty, start-up <= 10 s, shared p95
<= 1.5x the single tenant's, 0 foreign hits. Both shards have their HNSW graph, as at rest.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench._common import clustered_vectors, percentiles
from trooply.index.base import IndexPoint
from trooply.index.edge import EdgeIndex
from trooply.vectors import VectorSpace

BATCH = 2000


def space(dim: int) -> VectorSpace:
    return VectorSpace("bench", dim)


def tenant_name(i: int) -> str:
    return f"ten_{i:06d}"


def build(data_dir: Path, tenants: int, products: int, dim: int, single: bool) -> float:
    vectors = clustered_vectors(tenants * products, dim)
    started = time.perf_counter()
    index = EdgeIndex(data_dir, space(dim))
    try:
        if single:
            for start in range(0, len(vectors), BATCH):
                index.upsert("big", [IndexPoint(f"p{i}", vectors[i], {"product_id": f"p{i}"})
                                     for i in range(start, min(start + BATCH, len(vectors)))])
            index.promote("big").result()
            index.build_graph("big")
        else:
            for t in range(tenants):
                name = tenant_name(t)
                index.upsert(name, [IndexPoint(f"{name}-p{j}", vectors[t * products + j],
                                               {"product_id": f"{name}-p{j}"}) for j in range(products)])
            index.build_graph(tenant_name(0))  # the shared shard
    finally:
        index.close()
    return time.perf_counter() - started


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def measure(data_dir: Path, tenants: int, dim: int, queries: int, single: bool) -> dict[str, float]:
    """Run in a fresh process: start-up, memory, latency and (shared) the isolation sweep."""
    rng = np.random.default_rng(1)
    probes = clustered_vectors(queries, dim, seed=7)
    started = time.perf_counter()
    index = EdgeIndex(data_dir, space(dim))
    first = "big" if single else tenant_name(0)
    index.query(first, probes[0], 10)
    startup = time.perf_counter() - started
    names = ["big"] * queries if single else [tenant_name(int(t)) for t in rng.integers(0, tenants, queries)]
    samples = []
    for name, probe in zip(names, probes, strict=True):
        began = time.perf_counter()
        index.query(name, probe, 10)
        samples.append((time.perf_counter() - began) * 1000)
    p50, p95 = percentiles(samples)
    foreign = 0
    if not single:
        for t in range(tenants):
            name = tenant_name(t)
            hits = index.query(name, probes[t % queries], 50)
            foreign += sum(not hit.product_id.startswith(f"{name}-") for hit in hits)
    result = {"startup_s": startup, "rss_mb": rss_mb(), "p50_ms": p50, "p95_ms": p95, "foreign_hits": foreign}
    index.close()
    return result


def empty_rss(dim: int) -> float:
    with tempfile.TemporaryDirectory(prefix="trooply-bench-empty-") as data_dir:
        index = EdgeIndex(Path(data_dir), space(dim))
        index.query("nobody", np.ones(dim, np.float32), 10)
        rss = rss_mb()
        index.close()
    return rss


def in_fresh_process(*args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child's side
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--empty", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.empty:
        print(json.dumps({"rss_mb": empty_rss(args.dim)}))
        return
    if args.measure:
        print(json.dumps(measure(args.measure, args.tenants, args.dim, args.queries, args.single)))
        return

    common = ["--tenants", str(args.tenants), "--dim", str(args.dim), "--queries", str(args.queries)]
    total = args.tenants * args.products
    print(f"{args.tenants:,} tenants x {args.products} products = {total:,} vectors, {args.dim}-d, Qdrant Edge")
    empty = in_fresh_process("--empty", *common)["rss_mb"]
    figures = {}
    for single in (False, True):
        data_dir = Path(tempfile.mkdtemp(prefix="trooply-bench-tenants-"))
        built = build(data_dir, args.tenants, args.products, args.dim, single)
        figures[single] = in_fresh_process("--measure", str(data_dir), *common, *(["--single"] if single else []))
        figures[single]["built_s"] = built
    shared, one = figures[False], figures[True]
    print(f"  empty index process: {empty:,.0f} MB")
    for label, f in ((f"{args.tenants:,} tenants, shared shard", shared), ("one tenant, its own shard", one)):
        print(f"  {label}: built in {f['built_s']:.1f} s; start-up {f['startup_s']:.2f} s; "
              f"memory +{f['rss_mb'] - empty:,.0f} MB above empty; search p50 {f['p50_ms']:.2f} ms, "
              f"p95 {f['p95_ms']:.2f} ms")
    print(f"  p95 ratio shared / single: {shared['p95_ms'] / one['p95_ms']:.2f} (target <= 1.5)")
    print(f"  isolation sweep: {args.tenants:,} searches, {int(shared['foreign_hits'])} foreign hits (target 0)")


if __name__ == "__main__":
    main()
