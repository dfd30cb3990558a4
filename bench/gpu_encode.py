"""Encoder throughput and memory of one model: parameters, images/s of batched encoding, p50/p95 of one query
embedding (image and text), and the memory it took (GPU: peak allocated; CPU: the process's peak RSS). fp16 on
CUDA, fp32 on the CPU (slowly, so the script itself runs anywhere). Any TROOPLY_CLIP_MODEL form works.

    .venv/bin/python bench/gpu_encode.py --model ViT-L-14 --batch 64 --images 1024
    .venv/bin/python bench/gpu_encode.py --model ViT-B-16-SigLIP --stand-in-tokenizer   # offline, random weights

Random weights time like real ones (same architecture, same kernels). A SigLIP model's tokenizer comes from the
Hugging Face hub; `--stand-in-tokenizer` feeds random token ids of the model's own context length and vocabulary
instead, when the hub cannot be reached: the text tower's forward pass costs the same.
"""

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import open_clip
import torch
from PIL import Image

from trooply.batching import INGEST, BatchPolicy
from trooply.vision.encoder import ClipEncoder
from trooply.vision.sources import resolve


def photos(count: int, side: int = 512) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray((rng.random((side // 16, side // 16, 3)) * 255).astype(np.uint8)).resize((side, side))
            for _ in range(count)]


def synchronise() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StandInTokenizer:
    """Random token ids shaped as the model's tokenizer would shape them (timing only: no meaning)."""

    def __init__(self, context_length: int, vocab_size: int) -> None:
        self.context_length, self.vocab_size = context_length, vocab_size
        self._rng = torch.Generator().manual_seed(0)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return torch.randint(1, self.vocab_size, (len(texts), self.context_length), generator=self._rng)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-L-14")
    parser.add_argument("--pretrained", default="random", help="ignored for hf-hub: and local-dir: models")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--stand-in-tokenizer", action="store_true",
                        help="random token ids of the model's context length, for hub tokenizers out of reach")
    args = parser.parse_args()
    if args.stand_in_tokenizer:
        text = resolve(args.model, args.pretrained).config["text_cfg"]
        stand_in = StandInTokenizer(text.get("context_length", 77), text.get("vocab_size", 49408))
        open_clip.get_tokenizer = lambda *_args, **_kwargs: stand_in
    before = peak_rss_mib()
    encoder = ClipEncoder(args.model, args.pretrained, policy=BatchPolicy(max_batch=args.batch), text_cache_size=0)
    loaded = peak_rss_mib()
    parameters = sum(p.numel() for p in encoder.model.parameters())
    weights_mib = sum(p.numel() * p.element_size() for p in encoder.model.parameters()) / 2**20
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    described = encoder.describe()
    print(f"{args.model} on {device} ({encoder.precision}), batch {args.batch}: {parameters / 1e6:.0f} M parameters, "
          f"{encoder.space.size}-d, {described['image_size'][0]} px, weights {weights_mib:,.0f} MiB, "
          f"scoring {described['scoring']['kind']}")
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
        print(f"  one {kind:5} query: p50 {np.percentile(samples, 50):7.2f} ms"
              f"   p95 {np.percentile(samples, 95):7.2f} ms")
    if torch.cuda.is_available():
        print(f"  memory: {torch.cuda.max_memory_allocated() / 2**20:,.0f} MiB GPU peak allocated")
    else:
        print(f"  memory: process peak RSS {peak_rss_mib():,.0f} MiB ({before:,.0f} before the model, "
              f"{loaded:,.0f} once loaded)")
    encoder.close()


if __name__ == "__main__":
    main()
