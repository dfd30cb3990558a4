"""Words and pictures: R@1 and MRR per query kind for words-only and hybrid (RRF and DBSF), p50/p95 of hybrid
against pictures-only in the same run, and the index's write throughput with and without the words.

    .venv/bin/python bench/hybrid.py --products 10000 --queries 100

A generated catalogue with realistic titles (brand, model name and number, colour, material, product type), an
SKU and a short description per product, in the embedded default (Qdrant Edge, the search service in process, the
tiny test model). Four query kinds: model name ("Vantor Zephyr 412"), SKU ("SKU-04821"), brand + type ("vantor
backpack") and descriptive ("red leather tote"); a product is relevant when it has everything the query names.
Pictures are random vectors here (no model weights), so pictures-only quality means nothing and is not printed
as a quality figure; the latencies are real. Hybrid runs at the keyword_weight given (default 0.3, the profiles'
usual default).
"""

import argparse
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import bench_settings, clustered_vectors, percentiles
from trooply.api.app import create_app
from trooply.catalog.models import ProductRecord
from trooply.catalog.payload import index_payload
from trooply.index import tiers
from trooply.index.base import IndexPoint
from trooply.index.words import Words
from trooply.search.schemas import TextSearchRequest

BRANDS = ["Vantor", "Kessla", "Orvik", "Maruna", "Tellus", "Brisk", "Calloway", "Nordhem", "Pavo", "Quenta",
          "Rivel", "Sabre", "Talon", "Umbra", "Veld", "Wrenfield", "Xylo", "Yarrow", "Zento", "Alder"]
COLOURS = ["red", "navy", "black", "white", "green", "beige", "grey", "brown", "pink", "yellow"]
MATERIALS = ["leather", "canvas", "suede", "cotton", "wool", "nylon", "linen", "denim"]
TYPES = {"tote": "bags", "backpack": "bags", "sneaker": "shoes", "boot": "shoes", "jacket": "apparel",
         "jumper": "apparel", "wallet": "accessories", "cap": "accessories", "sandal": "shoes", "duffel": "bags"}
SYLLABLES = ["ze", "phy", "ra", "lon", "qui", "ta", "mor", "vek", "sil", "dor", "ban", "tri", "ko", "lu", "xen",
             "pa", "rio", "gal", "fen", "tor"]


@dataclass(frozen=True)
class Product:
    id: str
    brand: str
    model: str
    number: int
    colour: str
    material: str
    kind: str
    sku: str

    @property
    def title(self) -> str:
        return f"{self.brand} {self.model} {self.number} {self.colour} {self.material} {self.kind}"

    def meta(self) -> dict:
        return {"title": self.title, "brand": self.brand, "category": TYPES[self.kind],
                "description": f"A {self.material} {self.kind} by {self.brand}, made to last.",
                "attributes": {"sku": self.sku, "colour": self.colour, "material": self.material}}


def catalogue(count: int, seed: int = 0) -> list[Product]:
    rng = random.Random(seed)
    names = sorted({(rng.choice(SYLLABLES) + rng.choice(SYLLABLES) + rng.choice(SYLLABLES)).capitalize()
                    for _ in range(max(200, count // 20))})
    products = []
    for i in range(count):
        products.append(Product(f"p{i}", rng.choice(BRANDS), rng.choice(names), rng.randrange(1, 1000),
                                rng.choice(COLOURS), rng.choice(MATERIALS), rng.choice(list(TYPES)),
                                f"SKU-{i:06d}"))
    return products


def queries(products: list[Product], per_kind: int, seed: int = 1) -> dict[str, list[tuple[str, set[str]]]]:
    """Per kind: (query, the ids of every product having everything it names)."""
    rng = random.Random(seed)
    picked = rng.sample(products, per_kind)
    by = lambda test: {p.id for p in products if test(p)}  # noqa: E731 - a local shorthand
    return {
        "model name": [(f"{p.brand} {p.model} {p.number}",
                        by(lambda q, p=p: (q.brand, q.model, q.number) == (p.brand, p.model, p.number)))
                       for p in picked],
        "sku": [(p.sku, {p.id}) for p in picked],
        "brand + type": [(f"{p.brand.lower()} {p.kind}", by(lambda q, p=p: (q.brand, q.kind) == (p.brand, p.kind)))
                         for p in picked],
        "descriptive": [(f"{p.colour} {p.material} {p.kind}",
                         by(lambda q, p=p: (q.colour, q.material, q.kind) == (p.colour, p.material, p.kind)))
                        for p in picked],
    }


def populate(index, tenant_id: str, products: list[Product], vectors) -> float:
    """Writes every product as ingest does (payload from its record); seconds spent in the index."""
    spent = 0.0
    for start in range(0, len(products), 1000):
        points = []
        for i in range(start, min(start + 1000, len(products))):
            record = ProductRecord(tenant_id=tenant_id, id=products[i].id, image_url="http://127.0.0.1/x.png",
                                   meta=products[i].meta())
            points.append(IndexPoint(products[i].id, vectors[i], index_payload(record, {"aspect_ratio": 1.0})))
        began = time.perf_counter()
        index.upsert(tenant_id, points)
        spent += time.perf_counter() - began
    return spent


def quality(search: Callable[[str, float | None], list[str]], kinds: dict[str, list[tuple[str, set[str]]]],
            weight: float) -> dict[str, tuple[float, float]]:
    found = {}
    for kind, cases in kinds.items():
        hits, reciprocal = 0, 0.0
        for query, relevant in cases:
            ranked = search(query, weight)
            hits += bool(ranked) and ranked[0] in relevant
            reciprocal += next((1 / (rank + 1) for rank, pid in enumerate(ranked) if pid in relevant), 0.0)
        found[kind] = (hits / len(cases), reciprocal / len(cases))
    return found


def run(count: int, per_kind: int, weight: float, dim_model: str, compare_writes: bool) -> None:
    app = create_app(bench_settings(dim_model, hybrid_fusion="rrf"))
    container = app.state.container
    container.start()
    tenant = container.tenants.create_tenant("bench", "pro").tenant_id
    index, service = container.index, container.search
    products = catalogue(count)
    vectors = clustered_vectors(count, index.space.size)
    with_words = populate(index, tenant, products, vectors)
    if index.tier(tenant).promoting:  # past the promotion threshold: measured in its own store, as it would be
        index.promote(tenant).result()
    if compare_writes:
        before = tiers.document_words
        tiers.document_words = lambda payload: Words()  # type: ignore[assignment]  # the write as before words
        try:
            without_words = populate(index, "bench-no-words", products, vectors)
        finally:
            tiers.document_words = before
        index.drop_tenant("bench-no-words")
        print(f"\n{count:,} products ({index.space.name}, {index.space.size}-d): index writes "
              f"{count / with_words:,.0f}/s with words, {count / without_words:,.0f}/s without "
              f"({100 * (with_words / without_words - 1):+.1f}% time)")
    else:
        print(f"\n{count:,} products ({index.space.name}, {index.space.size}-d): index writes "
              f"{count / with_words:,.0f}/s with words")
    payloads = [index_payload(ProductRecord(tenant_id=tenant, id=p.id, image_url="x", meta=p.meta()))
                for p in products[:2000]]
    began = time.perf_counter()
    for payload in payloads:
        tiers.document_words(payload)
    print(f"  tokenising a product's words: {(time.perf_counter() - began) / len(payloads) * 1e6:.0f} us")
    built = time.perf_counter()
    index.active.build_graph(tenant)  # a catalogue at rest has its graph (LiveSpaces ▸ the Edge index)
    print(f"  HNSW graph built in {time.perf_counter() - built:.1f}s")

    def search(query: str, keyword_weight: float | None) -> list[str]:
        request = TextSearchRequest(query=query, limit=10, profile="accessories", keyword_weight=keyword_weight,
                                    explain=False)
        return [r.id for r in service.search_text(tenant, query, request, interpret=False).results]

    kinds = queries(products, per_kind)
    print(f"  R@1 / MRR@10 over {per_kind} queries per kind (pictures-only: random vectors, meaningless)")
    print(f"  {'kind':<14}{'words only':>18}{f'hybrid RRF {weight}':>20}{f'hybrid DBSF {weight}':>21}")
    results = {}
    for label, fusion, w in (("words", "rrf", 1.0), ("rrf", "rrf", weight), ("dbsf", "dbsf", weight)):
        service.retriever.fusion = fusion
        results[label] = quality(search, kinds, w)
    service.retriever.fusion = "rrf"
    for kind in kinds:
        cells = "".join(f"{results[label][kind][0]:>10.3f} / {results[label][kind][1]:.3f}"
                        for label in ("words", "rrf", "dbsf"))
        print(f"  {kind:<14}{cells}")

    texts = [q for cases in kinds.values() for q, _ in cases]
    latencies: dict[str, list[float]] = {"pictures": [], "hybrid": []}
    for round_ in range(2):
        for text in texts:
            for label, w in (("pictures", 0.0), ("hybrid", weight)):
                began = time.perf_counter()
                search(text, w)
                if round_:  # the first round warms up
                    latencies[label].append((time.perf_counter() - began) * 1000)
    (p50, p95), (h50, h95) = percentiles(latencies["pictures"]), percentiles(latencies["hybrid"])
    print(f"  search_text pictures-only p50 {p50:6.2f} ms  p95 {p95:6.2f} ms")
    print(f"  search_text hybrid        p50 {h50:6.2f} ms  p95 {h95:6.2f} ms   p95 ratio {h95 / p95:.2f} "
          f"(target <= 1.3)")
    container.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, nargs="+", default=[10_000])
    parser.add_argument("--queries", type=int, default=100, help="queries per kind")
    parser.add_argument("--keyword-weight", type=float, default=0.3)
    parser.add_argument("--model", default="trooply-test-tiny")
    parser.add_argument("--no-write-comparison", action="store_true",
                        help="skip writing the catalogue a second time without words (halves the set-up)")
    args = parser.parse_args()
    for count in args.products:
        run(count, args.queries, args.keyword_weight, args.model, not args.no_write_comparison)


if __name__ == "__main__":
    main()
