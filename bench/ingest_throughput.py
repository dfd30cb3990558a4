"""Products/s of the whole ingest pipeline (HTTP fetch from 127.0.0.1, decode, encode, colour, upsert, SQL)
against the raw batched encoder on the same images. Target: ratio >= 0.8.

    .venv/bin/python bench/ingest_throughput.py --products 128 --model ViT-B-32

Weights are random: throughput does not depend on their values.
"""

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from bench._common import bench_settings
from tests.support.image_server import ImageServer
from trooply.batching import INGEST
from trooply.catalog.schemas import ProductIn
from trooply.container import Container
from trooply.vision.decode import decode_image


def product_photo(i: int, size: int) -> bytes:
    rng = np.random.default_rng(i)
    pixels = (rng.random((size // 8, size // 8, 3)) * 255).astype(np.uint8)
    image = Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=128)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="embedded ingest worker threads")
    args = parser.parse_args()

    photos = [product_photo(i, args.size) for i in range(args.products)]
    container = Container(bench_settings(args.model, encode_batch_size=args.batch, ingest_workers=args.workers))
    container.start()
    try:
        with ImageServer() as server:
            for i, data in enumerate(photos):
                server.add_image(f"/{i}.jpg", data, "image/jpeg")
            creds = container.tenants.create_tenant("bench", "pro")
            products = [ProductIn(id=f"p{i}", image_url=server.url(f"/{i}.jpg")) for i in range(args.products)]
            container.encoder.encode_images([decode_image(photos[0], 10**8).image])  # warm-up
            started = time.perf_counter()
            job_id = container.catalog.submit(creds.tenant_id, products).job_id
            while container.catalog.job(creds.tenant_id, job_id)["status"] != "completed":
                time.sleep(0.05)
            pipeline_s = time.perf_counter() - started
            counts = container.catalog.job(creds.tenant_id, job_id)["counts"]

        images = [decode_image(data, 10**8).image for data in photos]
        started = time.perf_counter()
        container.encoder.encode_images(images, priority=INGEST)
        raw_s = time.perf_counter() - started
    finally:
        container.stop()

    pipeline_rate, raw_rate = args.products / pipeline_s, args.products / raw_s
    print(f"{args.products} products, {args.size}px JPEG, {args.model}, batch {args.batch}, {args.workers} worker(s)")
    print(f"  job counts: {counts}")
    print(f"  pipeline     {pipeline_rate:7.2f} products/s")
    print(f"  raw encoder  {raw_rate:7.2f} images/s")
    print(f"  ratio {pipeline_rate / raw_rate:.2f}  (target >= 0.8)")


if __name__ == "__main__":
    main()
