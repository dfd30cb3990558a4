"""Helpers shared by the benchmarks: percentiles, clustered vectors, a throwaway container."""

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np

from trooply.config import Settings


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples_ms, 50)), float(np.percentile(samples_ms, 95))


def clustered_vectors(count: int, dim: int, clusters: int = 256, spread: float = 0.35, seed: int = 0) -> np.ndarray:
    """Unit vectors grouped around centroids, like real catalogue embeddings (uniform noise is HNSW's worst case)."""
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((clusters, dim)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    members = centroids[rng.integers(0, clusters, count)]
    vectors = members + spread * rng.standard_normal((count, dim)).astype(np.float32) / np.sqrt(dim)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def bench_settings(model: str, **overrides) -> Settings:
    data_dir = Path(tempfile.mkdtemp(prefix="trooply-bench-"))
    atexit.register(shutil.rmtree, data_dir, True)  # a 768-d index of 100,000 products is 1.6 GB on disk
    # Rate limits off: a benchmark measures the service, not the plan's allowance.
    # The ONNX exports (TROOPLY_CLIP_RUNTIME=auto on a CPU) are kept between runs: a bench times serving, not exporting.
    values = dict(data_dir=data_dir, clip_model=model, clip_pretrained="random",
                  clip_export_dir=Path(tempfile.gettempdir()) / "trooply-bench-onnx",
                  fetch_allowed_networks=["127.0.0.1/32"], rate_limit_per_ip=0, rate_limit_per_tenant=0)
    return Settings(**(values | overrides))
