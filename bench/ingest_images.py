"""Ingest throughput with several images per product: images/s of products with 5 images each against today's
products of one image, through the whole pipeline (HTTP fetch from 127.0.0.1, decode, encode, colour, upsert,
SQL), the same number of images either way. Target: >= 0.9x the single-image images/s.

    .venv/bin/python bench/ingest_images.py --images 160 --per-product 5 --model ViT-B-32 --rounds 3

Rounds alternate (one image, several images, one image, ...) in one process, each on new URLs so nothing is kept,
so the ratio holds under a shared machine's load. Weights are random: throughput does not depend on them.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench._common import bench_settings
from bench.ingest_throughput import product_photo
from tests.support.image_server import ImageServer
from trooply.catalog.schemas import ProductIn
from trooply.container import Container
from trooply.vision.decode import decode_image


def ingest(container: Container, tenant_id: str, products: list[ProductIn]) -> float:
    """Seconds until the job of these products is completed."""
    started = time.perf_counter()
    job_id = container.catalog.submit(tenant_id, products).job_id
    while (job := container.catalog.job(tenant_id, job_id))["status"] != "completed":
        time.sleep(0.02)
    assert job["counts"]["failed"] == 0, job
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=160, help="images per round, either way")
    parser.add_argument("--per-product", type=int, default=5)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    container = Container(bench_settings(args.model))
    container.start()
    rates: dict[str, list[float]] = {"one image": [], f"{args.per_product} images": []}
    try:
        with ImageServer() as server:
            for i in range(args.images):  # the same pictures every round, under new URLs
                server.add_image(f"/{i}.jpg", product_photo(i, args.size), "image/jpeg")
            creds = container.tenants.create_tenant("bench", "pro")
            container.encoder.encode_images([decode_image(product_photo(0, args.size), 10**8).image])  # warm-up
            for round_ in range(args.rounds):
                def url(i: int, tag: str, r: int = round_) -> str:
                    return server.url(f"/{i}.jpg") + f"?{tag}{r}"

                single = [ProductIn(id=f"s{round_}-{i}", image_url=url(i, "s")) for i in range(args.images)]
                several = [ProductIn(id=f"m{round_}-{p}", images=[url(p * args.per_product + k, "m")
                                                                  for k in range(args.per_product)])
                           for p in range(args.images // args.per_product)]
                order = [("one image", single), (f"{args.per_product} images", several)]
                for name, products in order[::-1] if round_ % 2 else order:  # each goes first in turn
                    rates[name].append(args.images / ingest(container, creds.tenant_id, products))
    finally:
        container.stop()

    print(f"{args.images} images a round, {args.size}px JPEG, {args.model}, {args.rounds} rounds")
    for name, found in rates.items():
        print(f"  {name:10s} {np.median(found):7.2f} images/s (median; rounds: "
              f"{', '.join(f'{rate:.1f}' for rate in found)})")
    ratio = np.median(rates[f"{args.per_product} images"]) / np.median(rates["one image"])
    print(f"  ratio {ratio:.2f} per image  (target >= 0.9)")


if __name__ == "__main__":
    main()
