"""p50/p95 of POST /v1/search/text through the real HTTP server, next to the raw encoder + raw index
in the same run, and the overhead ratio. Target: our overhead <= 10% at p95.

    .venv/bin/python bench/search_latency.py --products 10000 100000 --model ViT-B-32

Weights are random (timing does not depend on them); vectors are clustered like real embeddings.
Every query text is unique, so the text cache never hides the encoder.
"""

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import uvicorn

from bench._common import bench_settings, clustered_vectors, percentiles
from trooply.api.app import create_app
from trooply.index.base import IndexPoint

CATEGORIES = ("shoes", "bags", "shirts", "watches", "lamps")


def populate(container, tenant_id: str, count: int) -> None:
    vectors = clustered_vectors(count, container.index.space.size)
    for start in range(0, count, 2000):
        container.index.upsert(tenant_id, [
            IndexPoint(f"p{i}", vectors[i], {"product_id": f"p{i}", "category": CATEGORIES[i % 5],
                                              "price": float(i % 500), "in_stock": i % 3 and 1,
                                              "metadata": {"title": f"Product {i}"}})
            for i in range(start, min(start + 2000, count))])


def serve(app, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def run(count: int, model: str, queries: int, port: int) -> None:
    app = create_app(bench_settings(model))
    server = serve(app, port)
    container = app.state.container
    creds = container.tenants.create_tenant("bench", "pro")
    started = time.perf_counter()
    populate(container, creds.tenant_id, count)
    print(f"\n{count:,} products, {model}: indexed in {time.perf_counter() - started:.1f}s")

    encoder, index = container.encoder, container.index
    body = {"limit": 30, "filters": {"category": "shoes", "in_stock": True}}
    from trooply.index.filters import parse_filters
    conditions = parse_filters(body["filters"])
    raw, api = [], []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}",
                      headers={"Authorization": f"Bearer {creds.publishable_key}"}) as client:
        for i in range(queries + 5):
            t0 = time.perf_counter()
            vector = encoder.encode_texts([f"raw query {i} red running shoes"])[0]
            index.query(creds.tenant_id, vector, 30, conditions)
            t1 = time.perf_counter()
            response = client.post("/v1/search/text", json={"query": f"api query {i} red running shoes", **body})
            t2 = time.perf_counter()
            assert response.status_code == 200, response.text
            if i >= 5:  # warm-up
                raw.append((t1 - t0) * 1000)
                api.append((t2 - t1) * 1000)
    (raw50, raw95), (api50, api95) = percentiles(raw), percentiles(api)
    print(f"  raw encoder + index   p50 {raw50:7.2f} ms   p95 {raw95:7.2f} ms")
    print(f"  HTTP /v1/search/text  p50 {api50:7.2f} ms   p95 {api95:7.2f} ms")
    print(f"  overhead at p95: {100 * (api95 / raw95 - 1):+.1f}%  (target <= +10%)")
    server.should_exit = True
    time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--port", type=int, default=18765)
    args = parser.parse_args()
    for offset, count in enumerate(args.products):
        run(count, args.model, args.queries, args.port + offset)


if __name__ == "__main__":
    main()
