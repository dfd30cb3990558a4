"""Encoder throughput and memory of one model: parameters, images/s of batched encoding, p50/p95 of one query
embedding (image and text), and the memory it took (GPU: peak allocated; CPU: the process's peak RSS). fp16 on
CUDA, fp32 on the CPU (slowly, so the script itself runs anywhere). Any TROOPLY_CLIP_MODEL form works.

    .venv/bin/python bench/gpu_encode.py --model ViT-L-14 --batch 64 --images 1024
    .venv/bin/python bench/gpu_encode.py --model ViT-B-16-SigLIP --stand-in-tokenizer   # offline, random weights
    .venv/bin/python bench/gpu_encode.py --model ViT-B-32 --runtime torch onnx onnx-int8 --images 256 --batch 16
    .venv/bin/python bench/gpu_encode.py --model ViT-B-32 --runtime onnx --onnx-threads 1 --callers 2 --batch 16

`--runtime` loads each CLIP runtime (TROOPLY_CLIP_RUNTIME) in this process, then measures them taking turns over
--rounds rounds (so a shared machine's load falls on each alike), and prints them side by side at the end, with each
one's ratio to the first and its lowest cosine to the first over the benchmark's own images.
The ONNX exports are kept under --export-dir, so a second run times the runtimes, not the export.

Random weights time like real ones (same architecture, same kernels). A SigLIP model's tokenizer comes from the
Hugging Face hub; `--stand-in-tokenizer` feeds random token ids of the model's own context length and vocabulary
instead, when the hub cannot be reached: the text tower's forward pass costs the same.
"""

import argparse
import os
import resource
import sys
import tempfile
import threading
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


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def folder_mib(folder: str | None) -> float:
    return sum(f.stat().st_size for f in Path(folder).iterdir()) / 2**20 if folder else 0.0


def timed_ms(run, indices: range) -> list[float]:
    samples = []
    for i in indices:
        begin = time.perf_counter()
        run(i)
        synchronise()
        samples.append((time.perf_counter() - begin) * 1000)
    return samples


def load(args: argparse.Namespace, runtime: str, images: list[Image.Image]) -> tuple[ClipEncoder, dict]:
    """One runtime's encoder (exported the first time), warmed up, and what it takes."""
    before = rss_mib()
    started = time.perf_counter()
    encoder = ClipEncoder.load(args.model, args.pretrained, policy=BatchPolicy(max_batch=args.batch), text_cache_size=0,
                          runtime=runtime, export_dir=args.export_dir, onnx_threads=args.onnx_threads,
                          preprocess_workers=args.preprocess_workers)
    load_s = time.perf_counter() - started
    described = encoder.describe()
    report = described["runtime"]
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    if encoder.model is not None:
        weights = sum(p.numel() * p.element_size() for p in encoder.model.parameters()) / 2**20
        parameters = f"{sum(p.numel() for p in encoder.model.parameters()) / 1e6:.0f} M parameters, "
    else:
        weights, parameters = folder_mib(report.get("folder")), ""
    print(f"\n{args.model} [{runtime}: {report['runtime']} {encoder.precision}] on {device}, batch {args.batch}: "
          f"{parameters}{encoder.space.size}-d, {described['image_size'][0]} px, weights {weights:,.0f} MiB, "
          f"scoring {described['scoring']['kind']}; loaded in {load_s:.1f} s ({report.get('export') or 'no export'})",
          flush=True)
    if report.get("fallback"):
        print(f"  FELL BACK: {report['fallback']}")
    # Bulk work goes in at ingest priority: a query of this size would be refused as overload.
    encoder.encode_images(images[:args.batch], priority=INGEST)  # warm-up: kernels, allocator
    encoder.encode_text("warm-up")
    synchronise()
    return encoder, {"runtime": runtime, "serving": f"{report['runtime']} {encoder.precision}",
                     "probe": report.get("probe_min_cosine"), "memory_mib": rss_mib() - before,
                     "batched_s": 0.0, "callers_s": 0.0, "image_ms": [], "text_ms": []}


def measure_round(args: argparse.Namespace, encoder: ClipEncoder, figures: dict, images: list[Image.Image],
                  pool: list[Image.Image], queries: range) -> np.ndarray:
    """One round of one runtime: its share of the batched images, of the ingest-shaped run and of the queries.
    Returns the batched vectors."""
    started = time.perf_counter()
    vectors = encoder.encode_images(images, priority=INGEST)
    synchronise()
    figures["batched_s"] += time.perf_counter() - started
    if args.callers > 1:
        started = time.perf_counter()
        ingest_shaped(encoder, images, args)
        figures["callers_s"] += time.perf_counter() - started
    figures["image_ms"] += timed_ms(lambda i: encoder.encode_images([pool[i % len(pool)]]), queries)
    figures["text_ms"] += timed_ms(lambda i: encoder.encode_text(f"query {i} red leather handbag"), queries)
    return vectors


def report(args: argparse.Namespace, figures: dict) -> None:
    figures["images_per_s"] = args.images / figures["batched_s"]
    figures["callers_per_s"] = args.images / figures["callers_s"] if args.callers > 1 else None
    print(f"\n[{figures['runtime']}: {figures['serving']}]")
    print(f"  batched encode: {figures['images_per_s']:8.1f} images/s (preprocessing included, one CPU thread pool)")
    if figures["callers_per_s"] is not None:
        print(f"  {args.callers} callers:      {figures['callers_per_s']:8.1f} images/s (each sends --batch images at "
              "a time: one's preprocessing overlaps another's pass, as ingest workers do)")
    for kind in ("image", "text"):
        samples = figures.pop(f"{kind}_ms")
        figures[f"{kind}_p50"] = float(np.percentile(samples, 50))
        print(f"  one {kind:5} query: p50 {figures[f'{kind}_p50']:7.2f} ms   p95 {np.percentile(samples, 95):7.2f} ms")


def ingest_shaped(encoder: ClipEncoder, images: list[Image.Image], args: argparse.Namespace) -> float:
    """Images/s with `--callers` threads taking --batch images at a time from one list until it is done."""
    chunks = iter(range(0, len(images), args.batch))
    lock = threading.Lock()

    def caller() -> None:
        while True:
            with lock:
                start = next(chunks, None)
            if start is None:
                return
            encoder.encode_images(images[start:start + args.batch], priority=INGEST)

    threads = [threading.Thread(target=caller) for _ in range(args.callers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(images) / (time.perf_counter() - started)


def side_by_side(rows: list[dict]) -> None:
    first = rows[0]
    print(f"\nside by side (one process, the runtimes taking turns in rounds; ratios to {first['runtime']}):")
    print(f"{'runtime':10} {'serving':13} {'img/s':>8} {'x':>5} {'img p50':>8} {'x':>5} {'txt p50':>8} {'x':>5} "
          f"{'cos min':>8} {'probe':>8} {'+RSS MiB':>9} {'callers img/s':>14}")
    for row in rows:
        cosine = row.get("min_cosine")
        print(f"{row['runtime']:10} {row['serving']:13} {row['images_per_s']:8.1f} "
              f"{row['images_per_s'] / first['images_per_s']:5.2f} {row['image_p50']:8.1f} "
              f"{row['image_p50'] / first['image_p50']:5.2f} {row['text_p50']:8.1f} "
              f"{row['text_p50'] / first['text_p50']:5.2f} {'-' if cosine is None else f'{cosine:.5f}':>8} "
              f"{'-' if row['probe'] is None else format(row['probe'], '.5f'):>8} {row['memory_mib']:9,.0f} "
              f"{'-' if row['callers_per_s'] is None else format(row['callers_per_s'], '.1f'):>14}")
    print("cos min: the lowest cosine of a runtime's image vectors to the first runtime's, over the batched images")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-L-14")
    parser.add_argument("--pretrained", default="random", help="ignored for hf-hub: and local-dir: models")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--stand-in-tokenizer", action="store_true",
                        help="random token ids of the model's context length, for hub tokenizers out of reach")
    parser.add_argument("--runtime", nargs="+", default=["torch"], choices=["torch", "auto", "onnx", "onnx-int8"],
                        help="CLIP runtimes to measure in turn (TROOPLY_CLIP_RUNTIME)")
    parser.add_argument("--export-dir", type=Path, default=Path(tempfile.gettempdir()) / "trooply-bench-onnx",
                        help="where the ONNX exports are kept between runs")
    parser.add_argument("--onnx-threads", type=int, help="TROOPLY_ONNX_THREADS (torch's threads when unset)")
    parser.add_argument("--callers", type=int, default=1,
                        help="also time this many threads encoding --batch images at a time (ingest-shaped)")
    parser.add_argument("--preprocess-workers", type=int, help="TROOPLY_PREPROCESS_WORKERS (the cores when unset)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="the images and queries are split into this many rounds that the runtimes take in turn")
    args = parser.parse_args()
    if args.stand_in_tokenizer:
        text = resolve(args.model, args.pretrained).config["text_cfg"]
        stand_in = StandInTokenizer(text.get("context_length", 77), text.get("vocab_size", 49408))
        open_clip.get_tokenizer = lambda *_args, **_kwargs: stand_in
    pool = photos(min(args.images, 256))
    images = [pool[i % len(pool)] for i in range(args.images)]
    loaded = [load(args, runtime, images) for runtime in args.runtime]
    rows = [figures for _, figures in loaded]
    # The runtimes take turns, in an order reversed every round: load from other processes that comes and goes
    # falls on each alike, so the ratios hold on a shared machine better than the absolute figures.
    chunk, per_round = -(-args.images // args.rounds), -(-args.queries // args.rounds)
    for number in range(args.rounds):
        order = loaded if number % 2 == 0 else loaded[::-1]
        part = images[number * chunk:(number + 1) * chunk]
        queries = range(number * per_round, min(args.queries, (number + 1) * per_round))
        vectors = {figures["runtime"]: measure_round(args, encoder, figures, part, pool, queries)
                   for encoder, figures in order}
        first = vectors[rows[0]["runtime"]]
        for figures in rows[1:]:
            lowest = float((vectors[figures["runtime"]] * first).sum(axis=1).min())
            figures["min_cosine"] = min(figures.get("min_cosine", 1.0), lowest)
    for encoder, figures in loaded:
        report(args, figures)
        encoder.close()
    if torch.cuda.is_available():
        print(f"\nmemory: {torch.cuda.max_memory_allocated() / 2**20:,.0f} MiB GPU peak allocated")
    else:
        print(f"\nmemory: process peak RSS {peak_rss_mib():,.0f} MiB (+RSS: what each runtime's encoder added)")
    if len(rows) > 1:
        side_by_side(rows)


if __name__ == "__main__":
    main()
