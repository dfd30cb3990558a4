"""Zero-shot detection latency per image, split into region proposals, CLIP scoring and NMS, at 640 and
1280 px. Weights are random: timing does not depend on them (accuracy needs real weights).

    .venv/bin/python bench/detect.py --model ViT-B-32 --runs 10
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image, ImageDraw

from trooply.batching import BatchPolicy
from trooply.vision.detection import ZeroShotDetector, finalise
from trooply.vision.encoder import ClipEncoder


def street_photo(side: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (side, side * 3 // 4), tuple(int(v) for v in rng.integers(180, 240, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(5):
        x, y = rng.integers(0, side * 3 // 4, 2)
        w, h = rng.integers(side // 10, side // 3, 2)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((int(x), int(y), int(x + w), int(y + h)), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--proposals", type=int, default=48)
    args = parser.parse_args()
    encoder = ClipEncoder.load(args.model, "random", policy=BatchPolicy(max_batch=64))
    detector = ZeroShotDetector(lambda: encoder, args.proposals)
    detector.detect(street_photo(640, 0))  # warm-up: class prompts embedded once
    print(f"{args.model}, up to {args.proposals} proposals, {args.runs} images per size")
    for side in (640, 1280):
        proposals, scoring, nms = [], [], []
        for run in range(args.runs):
            candidates, timings = detector.detect(street_photo(side, run + 1))
            started = time.perf_counter()
            finalise(candidates, 50, None)
            proposals.append(timings.proposals_ms)
            scoring.append(timings.scoring_ms)
            nms.append((time.perf_counter() - started) * 1000)
        print(f"  {side:5d} px  proposals p50 {np.median(proposals):7.1f} ms"
              f"   CLIP scoring p50 {np.median(scoring):7.1f} ms   NMS p50 {np.median(nms):6.2f} ms"
              f"   total p50 {np.median(np.add(np.add(proposals, scoring), nms)):7.1f} ms")


if __name__ == "__main__":
    main()
