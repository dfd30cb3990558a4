"""GPU encoder throughput: images/s of batched encoding and p50/p95 of one query embedding (image and text),
fp16 on CUDA. Runs on the CPU too (slowly) so the script itself is testable anywhere.

    .venv/bin/python bench/gpu_encode.py --model ViT-L-14 --batch 64 --images 1024
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from PIL import Image

from trooply.runtime.batcher import INGEST, BatchPolicy
from trooply.vision.encoder import ClipEncoder


def photos(count: int, side: int = 512) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray((rng.random((side // 16, side // 16, 3)) * 255).astype(np.uint8)).resize((side, side))
            for _ in range(count)]


def synchronise() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-L-14")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    encoder = ClipEncoder(args.model, "random", policy=BatchPolicy(max_batch=args.batch), text_cache_size=0)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print(f"{args.model} on {device} ({'fp16' if encoder.device.type == 'cuda' else 'fp32'}), batch {args.batch}")
    pool = photos(min(args.images, 256))
    images = [pool[i % len(pool)] for i in range(args.images)]
    # Bulk work goes in at ingest priority: a query of this size would be refused as overload.
    encoder.encode_images(images[:args.batch], priority=INGEST)  # warm-up: kernels, allocator
    synchronise()
    started = time.perf_counter()
    encoder.encode_images(images, priority=INGEST)
    synchronise()
    elapsed = time.perf_counter() - started
    print(f"  batched encode: {args.images / elapsed:8.1f} images/s (preprocessing included, one CPU thread pool)")
    for kind, run in (("image", lambda i: encoder.encode_images([pool[i % len(pool)]])),
                      ("text", lambda i: encoder.encode_text(f"query {i} red leather handbag"))):
        samples = []
        for i in range(args.queries):
            begin = time.perf_counter()
            run(i)
            synchronise()
            samples.append((time.perf_counter() - begin) * 1000)
        print(f"  one {kind:5} query: p50 {np.percentile(samples, 50):7.2f} ms   p95 {np.percentile(samples, 95):7.2f} ms")


if __name__ == "__main__":
    main()
