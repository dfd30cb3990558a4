"""Words and pictures: R@1 and MRR per query kind for words-only and hybrid (RRF and DBSF), p50/p95 of hybrid
against pictures-only in the same run (interleaved query by query, in rounds: the median of the rounds' p95 ratios
and their spread), and the index's write throughput with and without the words (interleaved batch by batch).

    .venv/bin/python bench/hybrid.py --products 10000 --queries 100
    .venv/bin/python bench/hybrid.py --ingest 48 --rounds 6     # the whole ingest pipeline, with and without words

`--ingest` runs the ingest pipeline (HTTP fetch from 127.0.0.1, decode, encode, colour, index, SQL) on jobs of
products with titles, SKUs and descriptions, alternately with and without the words (the same job twice, in
alternating order, round after round), and prints products/s of each and their ratio: the words' cost to ingest.

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
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
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


@contextmanager
def without_words() -> Iterator[None]:
    """Index writes as before the lexical leg: no words derived, none written."""
    before = tiers.document_words
    tiers.document_words = lambda payload, language="english": Words()  # type: ignore[assignment]
    try:
        yield
    finally:
        tiers.document_words = before


def batch_points(tenant_id: str, products: list[Product], vectors, start: int, end: int) -> list[IndexPoint]:
    points = []
    for i in range(start, end):
        record = ProductRecord(tenant_id=tenant_id, id=products[i].id, image_url="http://127.0.0.1/x.png",
                               meta=products[i].meta())
        points.append(IndexPoint(products[i].id, vectors[i], index_payload(record, {"aspect_ratio": 1.0})))
    return points


def populate(index, tenant_id: str, products: list[Product], vectors, compare_with: str | None = None,
             batch: int = 1000) -> tuple[float, float]:
    """Writes every product as ingest does (payload from its record); seconds spent in the index. With
    `compare_with`, each batch is also written without words to that tenant, in alternating order (the load of
    the moment weighs on both alike): the seconds of each."""
    spent = {True: 0.0, False: 0.0}
    for number, start in enumerate(range(0, len(products), batch)):
        end = min(start + batch, len(products))
        runs = [(tenant_id, True), *([(compare_with, False)] if compare_with else [])]
        for tenant, words in (runs if number % 2 == 0 else runs[::-1]):
            points = batch_points(tenant, products, vectors, start, end)
            began = time.perf_counter()
            if words:
                index.upsert(tenant, points)
            else:
                with without_words():
                    index.upsert(tenant, points)
            spent[words] += time.perf_counter() - began
    return spent[True], spent[False]


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


def run(count: int, per_kind: int, weight: float, dim_model: str, compare_writes: bool,
        latency_rounds: int, back_to_back: bool = False) -> None:
    app = create_app(bench_settings(dim_model, hybrid_fusion="rrf"))
    container = app.state.container
    container.start()
    tenant = container.tenants.create_tenant("bench", "pro").tenant_id
    index, service = container.index, container.search
    products = catalogue(count)
    vectors = clustered_vectors(count, index.space.size)
    with_words, without = populate(index, tenant, products, vectors, "bench-no-words" if compare_writes else None)
    if index.tier(tenant).promoting:  # past the promotion threshold: measured in its own store, as it would be
        index.promote(tenant).result()
    if compare_writes:
        index.drop_tenant("bench-no-words")
        print(f"\n{count:,} products ({index.space.name}, {index.space.size}-d): index writes, interleaved by batch: "
              f"{count / with_words:,.0f}/s with words, {count / without:,.0f}/s without "
              f"({100 * (with_words / without - 1):+.1f}% time)")
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

    # Each timed search starts with the last one's log row written (the writer's thread runs off the request path):
    # back to back, search i's row would be written during search i+1, at the first moment it lets go of the GIL.
    settle = None if back_to_back else service.log_writer.flush
    latency(search, [q for cases in kinds.values() for q, _ in cases], weight, latency_rounds, settle)
    container.stop()


def latency(search: Callable[[str, float | None], object], texts: list[str], weight: float, rounds: int,
            settle: Callable[[], None] | None) -> None:
    """p50/p95 of hybrid against pictures-only, robust to a shared machine: both modes run query by query, in
    alternating order (neither always pays for a cache the other fills), after a warm-up pass; each round gives its
    own p95 ratio, and the median of the rounds' ratios is the figure, with their spread. `settle` runs after each
    timed search, untimed: what the search left to background threads is done before the next one starts (None:
    back to back)."""
    for text in texts:  # warm-up
        search(text, 0.0)
        search(text, weight)
    per_round: list[dict[str, list[float]]] = []
    for _ in range(rounds):
        samples: dict[str, list[float]] = {"pictures": [], "hybrid": []}
        for number, text in enumerate(texts):
            modes = [("pictures", 0.0), ("hybrid", weight)]
            for label, w in (modes if number % 2 == 0 else modes[::-1]):
                began = time.perf_counter()
                search(text, w)
                samples[label].append((time.perf_counter() - began) * 1000)
                if settle is not None:
                    settle()
        per_round.append(samples)
    pacing = "back to back" if settle is None else "each after the last one's log row is written"
    print(f"  search_text latency, {rounds} rounds of {len(texts)} queries, the two modes interleaved query by query, "
          f"{pacing}")
    print(f"  {'round':<7}{'pictures p50':>13}{'p95':>8}{'hybrid p50':>12}{'p95':>8}{'p50 ratio':>11}{'p95 ratio':>11}")
    p50_ratios, p95_ratios = [], []
    for number, samples in enumerate(per_round, 1):
        (p50, p95), (h50, h95) = percentiles(samples["pictures"]), percentiles(samples["hybrid"])
        p50_ratios.append(h50 / p50)
        p95_ratios.append(h95 / p95)
        print(f"  {number:<7}{p50:>10.2f} ms{p95:>8.2f}{h50:>9.2f} ms{h95:>8.2f}{h50 / p50:>11.2f}{h95 / p95:>11.2f}")
    (p50, p95), (h50, h95) = (percentiles([ms for samples in per_round for ms in samples[label]])
                              for label in ("pictures", "hybrid"))
    print(f"  all     {p50:>9.2f} ms{p95:>8.2f}{h50:>9.2f} ms{h95:>8.2f}{h50 / p50:>11.2f}{h95 / p95:>11.2f}")
    ratio = statistics.median(p95_ratios)
    print(f"  HYBRID p95 / PICTURES-ONLY p95 = {ratio:.2f} (median of {rounds} rounds; spread "
          f"{min(p95_ratios):.2f}-{max(p95_ratios):.2f}; p50 ratio {statistics.median(p50_ratios):.2f}); "
          f"target <= 1.3: {'met' if ratio <= 1.3 else 'NOT met'}")
    if p95 > 2 * p50:  # a search's own p95 is close to its p50: a far larger one is other processes' load
        print(f"  (pictures-only p95 is {p95 / p50:.1f}x its p50: the machine's load, not the search, sets these p95s; "
              "take the p95 ratio on a quiet machine, the p50 ratio meanwhile)")


def ingest(per_job: int, rounds: int, model: str) -> None:
    """The whole pipeline's products/s, jobs with and without words alternating (each round swaps which goes
    first); every job fetches, decodes and encodes its own images (no cache between jobs)."""
    from bench.ingest_throughput import product_photo
    from tests.support.image_server import ImageServer
    from trooply.catalog.schemas import ProductIn
    from trooply.container import Container

    container = Container(bench_settings(model))
    container.start()
    products = catalogue(per_job * rounds * 2)
    rates: dict[bool, list[float]] = {True: [], False: []}
    # The seconds the pipeline spends in the index's writes, per kind of job: the words' own cost, which the
    # load of the moment blurs far less than throughput.
    in_index = {True: 0.0, False: 0.0}
    running = [True]
    upsert = tiers.TieredIndex.upsert

    def timed_upsert(self, tenant_id, points) -> None:  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        upsert(self, tenant_id, points)
        in_index[running[0]] += time.perf_counter() - began

    tiers.TieredIndex.upsert = timed_upsert  # type: ignore[method-assign]
    try:
        with ImageServer() as server:
            for i in range(len(products)):
                server.add_image(f"/{i}.jpg", product_photo(i, 256), "image/jpeg")
            tenant = container.tenants.create_tenant("bench", "pro").tenant_id

            def job(first: int, words: bool) -> None:
                batch = [ProductIn(id=products[i].id, image_url=server.url(f"/{i}.jpg"), **products[i].meta())
                         for i in range(first, first + per_job)]
                running[0] = words
                began = time.perf_counter()
                with nullcontext() if words else without_words():
                    job_id = container.catalog.submit(tenant, batch).job_id
                    while container.catalog.job(tenant, job_id)["status"] != "completed":
                        time.sleep(0.01)
                rates[words].append(per_job / (time.perf_counter() - began))

            job(0, True)  # warm-up: the model, the index, the pools
            rates[True].clear()
            in_index[True] = 0.0
            for round_ in range(rounds):
                first = (2 * round_) * per_job
                order = [True, False] if round_ % 2 == 0 else [False, True]
                for offset, words in enumerate(order):
                    job(first + offset * per_job, words)
    finally:
        tiers.TieredIndex.upsert = upsert  # type: ignore[method-assign]
        container.stop()
    with_words, without = (statistics.median(rates[True]), statistics.median(rates[False]))
    paired = statistics.median(w / o for w, o in zip(rates[True], rates[False], strict=True))
    count = per_job * rounds
    extra_ms = (in_index[True] - in_index[False]) / count * 1000
    print(f"ingest ({model}), {rounds} jobs of {per_job} products each way, interleaved")
    print(f"  with words    {with_words:7.2f} products/s (median; all: {', '.join(f'{r:.1f}' for r in rates[True])})")
    print(f"  without words {without:7.2f} products/s (median; all: {', '.join(f'{r:.1f}' for r in rates[False])})")
    print(f"  ratio of medians {with_words / without:.3f}, median of the rounds' ratios {paired:.3f} "
          f"(target >= 0.95)")
    print(f"  index writes inside the pipeline: {in_index[True] / count * 1000:.2f} ms/product with words, "
          f"{in_index[False] / count * 1000:.2f} without: the words add {extra_ms:.2f} ms/product, "
          f"{100 * extra_ms / (1000 / without):.1f}% of a product's time without words")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, nargs="+", default=[10_000])
    parser.add_argument("--queries", type=int, default=100, help="queries per kind")
    parser.add_argument("--keyword-weight", type=float, default=0.3)
    parser.add_argument("--model", default="trooply-test-tiny")
    parser.add_argument("--ingest", type=int, default=0, metavar="N",
                        help="instead: the ingest pipeline on jobs of N products, with and without words")
    parser.add_argument("--rounds", type=int, default=6, help="--ingest: jobs of each kind")
    parser.add_argument("--latency-rounds", type=int, default=5,
                        help="rounds of the latency comparison (each gives a p95 ratio; the median is reported)")
    parser.add_argument("--back-to-back", action="store_true",
                        help="time each search while the previous one's log row is still being written (the "
                             "writer's thread then takes the GIL from whichever search runs next)")
    parser.add_argument("--no-write-comparison", action="store_true",
                        help="skip writing the catalogue a second time without words (halves the set-up)")
    args = parser.parse_args()
    if args.ingest:
        ingest(args.ingest, args.rounds, args.model)
        return
    for count in args.products:
        run(count, args.queries, args.keyword_weight, args.model, not args.no_write_comparison,
            args.latency_rounds, args.back_to_back)


if __name__ == "__main__":
    main()
