"""The CLIP encoder: one object owning the model, preprocessing, tokenizer and device."""

import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from PIL import Image

from trooply.batching import QUERY, BatchPolicy, MicroBatcher
from trooply.observability import ENCODER_BATCH_SECONDS, timed
from trooply.vision.clip_runtime import (
    TORCH,
    ClipTowers,
    ExportRequest,
    RuntimeReport,
    TorchTowers,
    select_towers,
)
from trooply.vision.scoring import ZeroShotScoring
from trooply.vision.sources import RANDOM, ModelLoadError, ModelSource, one_line, resolve, vector_space

log = logging.getLogger(__name__)

__all__ = ["ClipEncoder", "ClipWeights", "LoadedClip", "ModelLoadError", "RANDOM", "normalise_text",
           "read_clip", "serve_clip", "vector_space"]


def normalise_text(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


@dataclass(frozen=True)
class LoadedClip:
    """What `ClipEncoder.load` read: the weights (on their device, in their precision), preprocessing, tokenizer and
    the runtime that runs the towers."""

    model_name: str
    pretrained: str
    source: ModelSource
    device: torch.device
    model: torch.nn.Module | None  # None when ONNX Runtime holds the weights: PyTorch's would double the memory
    preprocess: Callable[[Image.Image], torch.Tensor]
    preprocess_cfg: dict[str, Any]
    tokenizer: Any
    scoring: ZeroShotScoring
    towers: ClipTowers
    runtime: RuntimeReport


class ClipEncoder:
    """A loaded CLIP model behind two micro-batchers (images, texts). `load` reads it (the I/O, and its failures
    as ModelLoadError saying what to fix); the constructor only assembles what was loaded."""

    def __init__(self, loaded: LoadedClip, policy: BatchPolicy = BatchPolicy(), text_cache_size: int = 4096,
                 preprocess_workers: int | None = None) -> None:
        self.model_name, self.pretrained = loaded.model_name, loaded.pretrained
        self.source: ModelSource = loaded.source
        self.space = self.source.space
        self.device = loaded.device
        self.model = loaded.model
        # Mean, std, size, resize mode and interpolation all come from the model's own preprocess config.
        self.preprocess = loaded.preprocess
        self._preprocess_cfg = loaded.preprocess_cfg
        self.tokenizer = loaded.tokenizer
        self.scoring = loaded.scoring
        self._towers, self.runtime = loaded.towers, loaded.runtime
        self.precision = self.runtime.precision
        # Every forward pass runs on a batcher's thread, coalescing concurrent callers; callers preprocess
        # (decode, resize, normalise) in parallel beforehand, so the model, not preprocessing, is the limit.
        self._images = MicroBatcher(self.model_name, "image", self._forward_images, policy)
        self._texts = MicroBatcher(self.model_name, "text", self._forward_texts, policy)
        self._preprocess_pool = ThreadPoolExecutor(preprocess_workers or os.cpu_count() or 1,
                                                   thread_name_prefix="preprocess")
        self._cache_lock = threading.Lock()
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._text_cache_size = text_cache_size
        self.images_encoded = 0
        self.texts_encoded = 0

    @classmethod
    def load(cls, model_name: str, pretrained: str, device: str = "auto", policy: BatchPolicy = BatchPolicy(),
             text_cache_size: int = 4096, torch_threads: int | None = None,
             preprocess_workers: int | None = None, runtime: str = TORCH, export_dir: Path | None = None,
             onnx_threads: int | None = None) -> "ClipEncoder":
        """CLIP's load in its two stages: the weights (`read_clip`), then the runtime that runs them (`serve_clip`)."""
        weights = read_clip(model_name, pretrained, device, torch_threads)
        return cls(serve_clip(weights, runtime, export_dir, onnx_threads), policy, text_cache_size, preprocess_workers)

    def describe(self) -> dict[str, Any]:
        preprocess = self._preprocess_cfg
        return {"model": self.model_name, "pretrained": self.source.pretrained or None,
                "loaded_from": self.source.location, "space": self.space.name,
                "dim": self.space.size, "device": str(self.device), "precision": self.precision,
                "image_size": preprocess.get("size"), "resize_mode": preprocess.get("resize_mode"),
                "interpolation": preprocess.get("interpolation"),
                "context_length": getattr(self.tokenizer, "context_length", None),
                "scoring": self.scoring.describe(), "runtime": self.runtime.describe()}

    def encode_images(self, images: Sequence[Image.Image], priority: int = QUERY) -> np.ndarray:
        if not images:
            return np.empty((0, self.space.size), np.float32)
        if len(images) == 1:  # a query: its own request thread preprocesses it, in parallel with others'
            pixels = [self.preprocess(images[0])]
        else:
            pixels = list(self._preprocess_pool.map(self.preprocess, images))
        return np.stack(self._images.map(pixels, priority))

    def encode_texts(self, texts: Sequence[str], priority: int = QUERY) -> np.ndarray:
        if not texts:
            return np.empty((0, self.space.size), np.float32)
        return np.stack(self._texts.map(list(texts), priority))

    def _forward_images(self, pixels: list[torch.Tensor]) -> list[np.ndarray]:
        with timed(ENCODER_BATCH_SECONDS, kind="image"):
            vectors = self._towers.encode_images(torch.stack(pixels))
        self.images_encoded += len(pixels)  # only the batcher's thread writes it
        return list(vectors)

    def _forward_texts(self, texts: list[str]) -> list[np.ndarray]:
        with timed(ENCODER_BATCH_SECONDS, kind="text"):
            vectors = self._towers.encode_texts(self.tokenizer(texts))
        self.texts_encoded += len(texts)
        return list(vectors)

    def close(self) -> None:
        """Finishes the queued passes, then stops the batchers."""
        self._images.stop()
        self._texts.stop()
        self._preprocess_pool.shutdown(wait=True)

    def encode_text(self, text: str) -> np.ndarray:
        key = normalise_text(text)
        with self._cache_lock:
            if key in self._text_cache:
                self._text_cache.move_to_end(key)
                return self._text_cache[key]
        vector = self.encode_texts([key])[0]
        vector.setflags(write=False)  # cached arrays are shared between callers
        if self._text_cache_size:
            with self._cache_lock:
                self._text_cache[key] = vector
                if len(self._text_cache) > self._text_cache_size:
                    self._text_cache.popitem(last=False)
        return vector


@dataclass(frozen=True)
class ClipWeights:
    """The first stage of loading a CLIP model: its weights (on their device, in their precision), preprocessing
    and tokenizer, as PyTorch runs them."""

    model_name: str
    pretrained: str
    source: ModelSource
    device: torch.device
    dtype: torch.dtype
    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    preprocess_cfg: dict[str, Any]
    tokenizer: Any


def read_clip(model_name: str, pretrained: str, device: str = "auto",
              torch_threads: int | None = None) -> ClipWeights:
    """Reads a CLIP model's weights, preprocessing and tokenizer. A failure to read is a ModelLoadError that says
    what to fix."""
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    on = torch.device(device)
    # fp16 halves GPU memory and time; CPU kernels are slow or missing in fp16, so it stays fp32.
    precision = "fp16" if on.type == "cuda" else "fp32"
    source = resolve(model_name, pretrained)
    if source.schema and pretrained not in ("", "openai"):  # "openai" is the setting's default
        log.warning("TROOPLY_CLIP_PRETRAINED='%s' is ignored: '%s' loads %s", pretrained, model_name,
                    source.weights_from)
    if source.random:
        log.warning("CLIP model '%s' has RANDOM weights: vectors are deterministic but have NO "
                    "retrieval quality; use only for tests and development", model_name)

    # Same seed in every process, so the API and each worker build identical random weights;
    # fork_rng restores the caller's CPU RNG state (open_clip initialises on the CPU).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            # require_pretrained: open_clip would otherwise go on with random weights when a hub download fails.
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=source.open_clip_pretrained, precision=precision, device=on,
                require_pretrained=not source.random)
        except Exception as error:  # no network, no cached copy, a corrupt checkpoint or another model's
            if source.random:
                raise
            raise ModelLoadError(f"CLIP model '{model_name}' could not load {source.weights_from}: "
                                 f"{source.fix}. Cause: {one_line(error)}") from error
    model = model.eval()
    try:
        tokenizer = open_clip.get_tokenizer(model_name)  # its vocabulary and context length, from the config
    except Exception as error:  # a hub tokenizer without network, or without the `transformers` package
        raise ModelLoadError(f"CLIP model '{model_name}' could not load its tokenizer "
                             f"({source.config.get('text_cfg', {}).get('hf_tokenizer_name') or 'open_clip'}): "
                             "Hugging Face tokenizers need `pip install transformers` and the tokenizer files "
                             f"(in the local-dir folder, or from the hub). Cause: {one_line(error)}") from error
    dtype = torch.float16 if precision == "fp16" else torch.float32
    return ClipWeights(model_name, pretrained, source, on, dtype, model, preprocess,
                       open_clip.get_model_preprocess_cfg(model), tokenizer)


def serve_clip(weights: ClipWeights, runtime: str = TORCH, export_dir: Path | None = None,
               onnx_threads: int | None = None) -> LoadedClip:
    """The second stage: the runtime that runs the towers. For ONNX Runtime (fp32 or int8) the towers are exported
    if missing (cached in `export_dir`), opened and probed against PyTorch; a refused runtime falls back (int8 to
    fp32, then to PyTorch) and says why (`vision/clip_runtime.py:select_towers`). Never raises for a refusal."""
    size = weights.preprocess_cfg["size"]
    image_size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    source, model = weights.source, weights.model
    request = ExportRequest(model, source.space.name, source.config, image_size, weights.tokenizer)
    # ONNX Runtime's threads default to torch's: the cores, or one in each Celery prefork child.
    towers, report = select_towers(runtime, TorchTowers(model, weights.device, weights.dtype), request,
                                   weights.preprocess, export_dir, onnx_threads or torch.get_num_threads())
    return LoadedClip(weights.model_name, weights.pretrained, source, weights.device,
                      model if report.runtime == TORCH else None, weights.preprocess, weights.preprocess_cfg,
                      weights.tokenizer, ZeroShotScoring.of(model), towers, report)
