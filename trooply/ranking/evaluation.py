"""`trooply eval`: Recall@1, Recall@10 and nDCG@10 of raw cosine and of the full pipeline, per profile,
on a merchant's own labelled catalogue. It is how real weights and tuned profiles are judged.

Recall@K is the share of a query's relevant products found in its top K; nDCG@10 uses binary relevance.
"""

import json
import math
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trooply.catalog.schemas import parse_product_batch
from trooply.config import Settings
from trooply.errors import InvalidRequest
from trooply.index.filters import parse_filters
from trooply.search.schemas import SearchOptions
from trooply.vision.decode import decode_image
from trooply.vision.query_image import QueryImage

K = 10


def recall_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant)


def ndcg_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, pid in enumerate(ranked[:k]) if pid in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal


def metrics(ranked: Sequence[str], relevant: set[str]) -> dict[str, float]:
    return {"recall@1": recall_at(ranked, relevant, 1), "recall@10": recall_at(ranked, relevant, K),
            "ndcg@10": ndcg_at(ranked, relevant, K)}


@dataclass
class LabelledQuery:
    text: str | None
    image_url: str | None
    relevant: set[str]
    profile: str | None
    filters: dict[str, Any] | None

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


def run_evaluation(settings: Settings, catalog: Path, queries: Path, timeout_s: float = 3600) -> dict[str, dict]:
    """Indexes the catalogue in a throwaway data directory, then scores every query both ways."""
    from trooply.container import Container

    labelled = [LabelledQuery.parse(line, n) for n, line in enumerate(read_jsonl(queries), 1)]
    products = parse_product_batch({"products": read_jsonl(catalog)})
    with tempfile.TemporaryDirectory(prefix="trooply-eval-") as scratch:
        container = Container(settings.model_copy(update={"data_dir": Path(scratch), "database_url": None,
                                                          "redis_url": None, "qdrant_url": None}))
        container.start()
        try:
            tenant = container.tenants.create_tenant("eval", "pro").tenant_id
            job_id = container.catalog.submit(tenant, products).job_id
            deadline = time.monotonic() + timeout_s
            while (job := container.catalog.job(tenant, job_id))["status"] != "completed":
                if time.monotonic() > deadline:
                    raise InvalidRequest("the catalogue did not finish indexing in time", code="eval_timeout")
                time.sleep(0.2)
            totals = _score(container, tenant, labelled)
            totals["_catalogue"] = {"indexed": job["counts"]["indexed"], "failed": job["counts"]["failed"]}
            return totals
        finally:
            container.stop()


def _score(container, tenant: str, labelled: list[LabelledQuery]) -> dict[str, dict]:
    sums: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for query in labelled:
        options = SearchOptions(limit=K, profile=query.profile, filters=query.filters)
        if query.text is not None:
            envelope = container.search.search_text(tenant, query.text, options)
            vector = container.encoder.encode_text(query.text)
        else:
            data = container.fetcher.fetch(query.image_url).data  # fetched once for both ways
            envelope = container.search.search_image(tenant, QueryImage(data=data), options)
            vector = container.encoder.encode_images([decode_image(data, container.settings.max_image_pixels).image])[0]
        raw = [h.product_id for h in container.index.query(tenant, vector, K, parse_filters(query.filters))]
        for group in ("all", envelope.profile):
            sums[group]["cosine"].append(metrics(raw, query.relevant))
            sums[group]["pipeline"].append(metrics([r.id for r in envelope.results], query.relevant))
    return {group: {"queries": len(ways["cosine"]),
                    **{way: {name: sum(m[name] for m in rows) / len(rows) for name in rows[0]}
                       for way, rows in ways.items()}}
            for group, ways in sums.items()}


def format_report(report: dict[str, dict]) -> str:
    catalogue = report.pop("_catalogue")
    lines = [f"catalogue: {catalogue['indexed']} indexed, {catalogue['failed']} failed",
             f"{'group':14} {'queries':>7}  {'way':9} {'R@1':>6} {'R@10':>6} {'nDCG@10':>8}"]
    for group in ["all", *sorted(g for g in report if g != "all")]:
        for way in ("cosine", "pipeline"):
            m = report[group][way]
            lines.append(f"{group:14} {report[group]['queries']:7d}  {way:9} {m['recall@1']:6.3f} "
                         f"{m['recall@10']:6.3f} {m['ndcg@10']:8.3f}")
    return "\n".join(lines)
