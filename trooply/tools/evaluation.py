"""`trooply eval`: Recall@1, Recall@10 and nDCG@10 of raw cosine and of the full pipeline, per profile, with the
wall time and throughput of indexing and of each way of searching. It is how real weights, a model change and
tuned profiles are judged, on either of:

- a merchant's own labelled catalogue (JSONL): Recall@K is the share of a query's relevant products in its top K;
- a standard test set in its published layout (trooply.tools.benchmarks): Recall@K as the papers count it,
  1 when any relevant image is in the query's top K, so the figures compare with published tables.

`compare_runtimes` runs either with PyTorch and with another CLIP runtime (`trooply eval --runtime onnx-int8`), so a
merchant with real weights sees what int8 costs on their own catalogue before switching.

nDCG@10 uses binary relevance. When the catalogue carries product text (titles, brands, descriptions), its text
queries are also scored words-only (keyword_weight 1), pictures-only (0) and hybrid (the profile's default).
"""

import json
import math
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from trooply.catalog.schemas import MAX_BATCH, ProductIn, parse_product_batch
from trooply.config import Settings
from trooply.errors import InvalidRequest
from trooply.index.filters import parse_filters
from trooply.search.schemas import SearchOptions, TextSearchRequest
from trooply.tools.benchmarks import image_url, read_benchmark, served
from trooply.vision.clip_runtime import export_dir_of
from trooply.vision.decode import decode_image
from trooply.vision.query_image import QueryImage

K = 10
WAYS = ("cosine", "pipeline")
WORD_WAYS = {"words": 1.0, "pictures": 0.0, "hybrid": None}  # keyword_weight (None: the profile's)
Metrics = Callable[[Sequence[str], set[str]], dict[str, float]]


def recall_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant)


def hit_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Published retrieval benchmarks' Recall@K: whether any relevant item is in the top K."""
    return 1.0 if set(ranked[:k]) & relevant else 0.0


def ndcg_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, pid in enumerate(ranked[:k]) if pid in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal


def metrics(ranked: Sequence[str], relevant: set[str]) -> dict[str, float]:
    return {"recall@1": recall_at(ranked, relevant, 1), "recall@10": recall_at(ranked, relevant, K),
            "ndcg@10": ndcg_at(ranked, relevant, K)}


def benchmark_metrics(ranked: Sequence[str], relevant: set[str]) -> dict[str, float]:
    return {"recall@1": hit_at(ranked, relevant, 1), "recall@10": hit_at(ranked, relevant, K),
            "ndcg@10": ndcg_at(ranked, relevant, K)}


@dataclass
class LabelledQuery:
    text: str | None
    image_url: str | None
    relevant: set[str]
    profile: str | None
    filters: dict[str, Any] | None
    image_file: Path | None = None
    own_id: str | None = None  # the query's own image in the catalogue (a test set's query in its gallery): not a hit

    @classmethod
    def parse(cls, line: dict[str, Any], number: int) -> "LabelledQuery":
        relevant = line.get("relevant")
        if not isinstance(relevant, list) or not relevant or (("query" in line) == ("image_url" in line)):
            raise InvalidRequest(f"queries line {number}: needs `query` or `image_url`, and a non-empty `relevant` "
                                 "list of product ids", code="invalid_eval_file")
        return cls(line.get("query"), line.get("image_url"), set(map(str, relevant)), line.get("profile"),
                   line.get("filters"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    try:
        return [json.loads(line) for line in lines]
    except json.JSONDecodeError as error:
        raise InvalidRequest(f"{path}: line {error.lineno} is not JSON", code="invalid_eval_file") from error


def run_evaluation(settings: Settings, catalog: Path, queries: Path, concurrency: int = 1,
                   timeout_s: float = 3600) -> dict[str, dict]:
    """Indexes the catalogue in a throwaway data directory, then scores every query both ways."""
    labelled = [LabelledQuery.parse(line, n) for n, line in enumerate(read_jsonl(queries), 1)]
    lines = read_jsonl(catalog)
    products = []
    for start in range(0, len(lines), MAX_BATCH):
        try:
            products += parse_product_batch({"products": lines[start:start + MAX_BATCH]})
        except InvalidRequest as error:
            raise InvalidRequest(f"{catalog}, lines {start + 1}-{start + MAX_BATCH}: {error.message}",
                                 code="invalid_eval_file") from error
    return _run(settings, products, labelled, metrics, concurrency, timeout_s)


def run_benchmark(settings: Settings, path: Path, layout: str = "auto", profile: str | None = None,
                  max_queries: int | None = None, concurrency: int = 4,
                  timeout_s: float = 24 * 3600) -> dict[str, dict]:
    """A standard test set: its gallery indexed through the ingest pipeline (served from 127.0.0.1), its queries
    (all, or a seeded sample of `max_queries`) searched both ways; `profile` forces one instead of zero-shot."""
    benchmark = read_benchmark(path, layout)
    queries = benchmark.queries
    if max_queries is not None and max_queries < len(queries):
        chosen = set(random.Random(0).sample(range(len(queries)), max_queries))
        queries = [query for i, query in enumerate(queries) if i in chosen]
    in_gallery = {image.id for image in benchmark.gallery}
    labelled = [LabelledQuery(None, None, benchmark.relevant(q), profile, None, benchmark.root / q.path,
                              q.id if q.id in in_gallery else None) for q in queries]
    local = settings.updated(fetch_allowed_networks=[*settings.fetch.allowed_networks, "127.0.0.1/32"])
    with served(benchmark.root) as base:
        products = [ProductIn(id=image.id, image_url=image_url(base, image)) for image in benchmark.gallery]
        report = _run(local, products, labelled, benchmark_metrics, concurrency, timeout_s)
    report["_dataset"] = benchmark.describe() | {"queries_evaluated": len(labelled)}
    return report


def compare_runtimes(evaluate: Callable[[Settings], dict[str, dict]], settings: Settings,
                     runtime: str) -> dict[str, dict[str, dict]]:
    """The same evaluation with PyTorch, then with `runtime`: {"torch": report, runtime: report}. The other
    runtime's report also says how far its top 10 agrees with PyTorch's, query by query (`_agreement`)."""
    reports = {name: evaluate(settings.updated(clip_runtime=name)) for name in ("torch", runtime)}
    base = reports["torch"].pop(RANKED)
    other = reports[runtime]
    other["_agreement"] = agreement(base, other.pop(RANKED))
    return reports


RANKED = "_ranked"  # each way's top K ids per query, in query order: what compare_runtimes compares


def agreement(base: dict[str, list[list[str]]], other: dict[str, list[list[str]]]) -> dict[str, dict[str, float]]:
    """Per way, over the queries: the share of the top K both runtimes returned, and of queries whose first
    result is the same. Needs no labels: how often int8 changes what a shopper sees, not whether it is right."""
    found = {}
    for way, rows in base.items():
        pairs = list(zip(rows, other[way], strict=True))
        shared = [len(set(a) & set(b)) / max(len(a), len(b)) if a or b else 1.0 for a, b in pairs]
        same_first = [a[:1] == b[:1] for a, b in pairs]
        found[way] = {f"overlap@{K}": sum(shared) / max(1, len(pairs)),
                      "same_first": sum(same_first) / max(1, len(pairs))}
    return found


def _run(settings: Settings, products: list[ProductIn], labelled: list[LabelledQuery], metric: Metrics,
         concurrency: int, timeout_s: float) -> dict[str, dict]:
    from trooply.container import Container

    with tempfile.TemporaryDirectory(prefix="trooply-eval-") as scratch:
        # A throwaway embedded service; an evaluation waits for the model rather than being shed as overload.
        unlimited = {**settings.plans, "pro": settings.plan("pro").model_copy(update={"max_products": None})}
        # The ONNX exports stay in the real data dir: the next evaluation reuses them.
        container = Container(settings.updated(
            data_dir=Path(scratch), database_url=None, redis_url=None, qdrant_url=None, plans=unlimited,
            runtime_wait_budget_seconds=timeout_s, runtime_query_timeout_seconds=timeout_s,
            clip_export_dir=export_dir_of(settings)))
        container.start()  # loads the model and embeds the profile prompts: not part of the timings
        try:
            tenant = container.tenants.create_tenant("eval", "pro").tenant_id
            catalogue = _index(container, tenant, products, timeout_s)
            report = _score(container, tenant, labelled, metric, concurrency)
            texts = [query for query in labelled if query.text is not None]
            if texts and any(p.title or p.brand or p.description for p in products):
                report["_words"] = _score_words(container, tenant, texts, metric)
            described = container.encoder.describe()
            report["_model"] = {key: described[key] for key in ("model", "loaded_from", "dim", "device", "precision",
                                                                "runtime")}
            report["_catalogue"] = catalogue
            return report
        finally:
            container.stop()


def _index(container, tenant: str, products: list[ProductIn], timeout_s: float) -> dict[str, float]:
    started = time.perf_counter()
    jobs = [container.catalog.submit(tenant, products[i:i + MAX_BATCH]).job_id
            for i in range(0, len(products), MAX_BATCH)]
    deadline = time.monotonic() + timeout_s
    counts = {"indexed": 0, "failed": 0}
    for job_id in jobs:
        while (job := container.catalog.job(tenant, job_id))["status"] != "completed":
            if time.monotonic() > deadline:
                raise InvalidRequest("the catalogue did not finish indexing in time", code="eval_timeout")
            time.sleep(0.2)
        counts = {name: counts[name] + job["counts"][name] for name in counts}
    seconds = time.perf_counter() - started
    return {**counts, "seconds": round(seconds, 2), "images_per_s": round(len(products) / seconds, 2)}


def _score(container, tenant: str, labelled: list[LabelledQuery], metric: Metrics,
           concurrency: int) -> dict[str, dict]:
    # Query image URLs are fetched once, before the clocks start; files are read as part of each query.
    fetched = {q.image_url: container.fetcher.fetch(q.image_url).data for q in labelled if q.image_url}

    def image(query: LabelledQuery) -> bytes:
        # Not a text query: an image URL, or a test set's image file.
        return fetched[query.image_url] if query.image_url else cast(Path, query.image_file).read_bytes()

    def pipeline(query: LabelledQuery) -> tuple[list[str], str]:
        options = SearchOptions(limit=K + (query.own_id is not None), profile=query.profile, filters=query.filters)
        if query.text is not None:
            envelope = container.search.search_text(tenant, query.text, options)
        else:
            envelope = container.search.search_image(tenant, QueryImage(data=image(query)), options)
        return [r.id for r in envelope.results if r.id != query.own_id][:K], envelope.profile

    def cosine(query: LabelledQuery) -> list[str]:
        if query.text is not None:
            vector = container.encoder.encode_text(query.text)
        else:
            picture = decode_image(image(query), container.settings.images.max_pixels).image
            vector = container.encoder.encode_images([picture])[0]
        hits = container.index.query(tenant, vector, K + (query.own_id is not None), parse_filters(query.filters))
        return [h.product_id for h in hits if h.product_id != query.own_id][:K]

    timing = {}
    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="eval") as pool:
        started = time.perf_counter()
        searched = list(pool.map(pipeline, labelled))
        timing["pipeline"] = time.perf_counter() - started
        started = time.perf_counter()
        raw = list(pool.map(cosine, labelled))
        timing["cosine"] = time.perf_counter() - started

    sums: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for query, (ranked, profile), cosine_ranked in zip(labelled, searched, raw, strict=True):
        for group in ("all", profile):
            sums[group]["cosine"].append(metric(cosine_ranked, query.relevant))
            sums[group]["pipeline"].append(metric(ranked, query.relevant))
    report: dict[str, dict] = {group: {"queries": len(ways["cosine"]),
                                       **{way: {name: sum(m[name] for m in rows) / len(rows) for name in rows[0]}
                                          for way, rows in ways.items()}}
                               for group, ways in sums.items()}
    report["_timing"] = {way: {"seconds": round(timing[way], 2),
                               "queries_per_s": round(len(labelled) / timing[way], 2) if timing[way] else 0.0}
                         for way in WAYS}
    report["_timing"]["concurrency"] = max(1, concurrency)
    report[RANKED] = {"pipeline": [ranked for ranked, _ in searched], "cosine": raw}
    return report


def _score_words(container, tenant: str, texts: list[LabelledQuery], metric: Metrics) -> dict[str, Any]:
    """The text queries words-only, pictures-only and hybrid: what the product's words add to its picture."""
    found: dict[str, Any] = {"queries": len(texts)}
    for way, keyword_weight in WORD_WAYS.items():
        rows = []
        for query in texts:
            options = TextSearchRequest(query=cast(str, query.text), limit=K, profile=query.profile,
                                        filters=query.filters, keyword_weight=keyword_weight, explain=False)
            envelope = container.search.search_text(tenant, cast(str, query.text), options)
            rows.append(metric([r.id for r in envelope.results], query.relevant))
        found[way] = {name: sum(row[name] for row in rows) / len(rows) for name in rows[0]}
    return found


_RUNTIME_NAMES = {"torch": "PyTorch", "onnx": "ONNX Runtime"}


def format_report(report: dict[str, dict]) -> str:
    catalogue, timing, model = report["_catalogue"], report["_timing"], report["_model"]
    runtime = model["runtime"]
    lines = [f"model: {model['model']} ({model['loaded_from']}; {model['dim']}-d, {model['device']}, "
             f"{runtime['runtime']} {model['precision']})"]
    if "fallback" in runtime:
        served = f"{_RUNTIME_NAMES.get(runtime['runtime'], runtime['runtime'])} {runtime['precision']}"
        lines.append(f"runtime: {runtime['requested']} fell back to {served}: {runtime['fallback']}")
    if "_dataset" in report:
        dataset = report["_dataset"]
        lines.append(f"dataset: {dataset['name']}: {dataset['gallery']} gallery images of {dataset['products']} "
                     f"products, {dataset['queries_evaluated']} of {dataset['queries']} queries; Recall@K = share of "
                     "queries with a relevant image in the top K (as published)")
    lines.append(f"catalogue: {catalogue['indexed']} indexed, {catalogue['failed']} failed in "
                 f"{catalogue['seconds']:.1f} s ({catalogue['images_per_s']:.1f} images/s through the ingest pipeline)")
    lines.append("search: " + ", ".join(f"{way} {timing[way]['seconds']:.1f} s ({timing[way]['queries_per_s']:.1f} "
                                        f"queries/s)" for way in WAYS) + f", {timing['concurrency']} at a time")
    lines.append(f"{'group':14} {'queries':>7}  {'way':9} {'R@1':>6} {'R@10':>6} {'nDCG@10':>8}")
    for group in ["all", *sorted(g for g in report if g != "all" and not g.startswith("_"))]:
        for way in WAYS:
            m = report[group][way]
            lines.append(f"{group:14} {report[group]['queries']:7d}  {way:9} {m['recall@1']:6.3f} "
                         f"{m['recall@10']:6.3f} {m['ndcg@10']:8.3f}")
    if "_words" in report:
        words = report["_words"]
        for way in WORD_WAYS:
            m = words[way]
            lines.append(f"{'text queries':14} {words['queries']:7d}  {way:9} {m['recall@1']:6.3f} "
                         f"{m['recall@10']:6.3f} {m['ndcg@10']:8.3f}")
    return "\n".join(lines)


def format_comparison(reports: dict[str, dict[str, dict]]) -> str:
    """Each runtime's report, then each figure next to PyTorch's (the first) and the difference."""
    (base_name, base), *others = reports.items()
    lines = []
    for name, report in reports.items():
        lines += [f"== {name} ==", format_report(report), ""]
    for name, report in others:
        lines.append(f"{name} against {base_name}: lowest probe cosine "
                     f"{report['_model']['runtime'].get('probe_min_cosine', '-')}; indexing "
                     f"{report['_catalogue']['images_per_s'] / base['_catalogue']['images_per_s']:.2f}x, searching "
                     + ", ".join(f"{way} {_ratio(report['_timing'][way], base['_timing'][way])}" for way in WAYS))
        if "_agreement" in report:
            lines.append(f"top {K} against {base_name} (no labels needed): " + ", ".join(
                f"{way} {report['_agreement'][way][f'overlap@{K}']:.1%} shared, same first result "
                f"{report['_agreement'][way]['same_first']:.1%}" for way in WAYS))
        lines.append(f"{'group':14} {'way':9} {'R@1':>15} {'R@10':>15} {'nDCG@10':>15}")
        for group in ["all", *sorted(g for g in report if g != "all" and not g.startswith("_"))]:
            if group not in base:
                continue
            for way in WAYS:
                cells = [f"{report[group][way][m]:.3f} ({report[group][way][m] - base[group][way][m]:+.3f})"
                         for m in ("recall@1", "recall@10", "ndcg@10")]
                lines.append(f"{group:14} {way:9} " + " ".join(f"{cell:>15}" for cell in cells))
    return "\n".join(lines)


def _ratio(timing: dict[str, float], base: dict[str, float]) -> str:
    return f"{timing['queries_per_s'] / base['queries_per_s']:.2f}x" if base["queries_per_s"] else "-"
