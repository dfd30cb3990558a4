"""The CLIP encoder: one object owning the model, preprocessing, tokenizer and device."""

import logging
import os
import re
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

from trooply.errors import TrooplyError
from trooply.index.base import VectorSpace
from trooply.observability import ENCODER_BATCH_SECONDS, timed
from trooply.runtime.batcher import QUERY, BatchPolicy, MicroBatcher

if TYPE_CHECKING:
    from trooply.config import Settings

log = logging.getLogger(__name__)

# Project configs (e.g. the tiny test model) join open_clip's registry once per process.
open_clip.add_model_config(Path(__file__).parent / "model_configs")

RANDOM = "random"
_FIX = ("set TROOPLY_CLIP_PRETRAINED=/path/to/checkpoint.pt for local weights, "
        "or TROOPLY_CLIP_PRETRAINED=random for a demo without retrieval quality")


class ModelLoadError(TrooplyError, ValueError):
    """The configured CLIP model or its weights cannot be loaded: which, from where, and the settings that fix it."""

    code = "model_unavailable"
    status = 503


def normalise_text(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def vector_space(model_name: str, pretrained: str) -> VectorSpace:
    """The space a model's vectors live in, known without loading the model."""
    config = open_clip.get_model_config(model_name)
    if config is None:
        raise ModelLoadError(f"unknown CLIP model '{model_name}' (TROOPLY_CLIP_MODEL): not in open_clip.list_models()")
    if pretrained == RANDOM:
        tag = RANDOM
    elif Path(pretrained).is_file():
        tag = Path(pretrained).stem
    elif pretrained in open_clip.list_pretrained_tags_by_model(model_name):
        tag = pretrained
    else:
        raise ModelLoadError(f"CLIP weights '{pretrained}' (TROOPLY_CLIP_PRETRAINED) are neither an existing checkpoint "
                             f"file nor a pretrained tag of model '{model_name}': {_FIX}")
    # Qdrant vector names refuse ':' (and a checkpoint's file name may hold anything): keep [A-Za-z0-9._-].
    return VectorSpace(name=re.sub(r"[^A-Za-z0-9._-]", "-", f"{model_name}__{tag}"), size=config["embed_dim"])


class ClipEncoder:
    def __init__(self, model_name: str, pretrained: str, device: str = "auto", policy: BatchPolicy = BatchPolicy(),
                 text_cache_size: int = 4096, torch_threads: int | None = None,
                 preprocess_workers: int | None = None) -> None:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        # fp16 halves GPU memory and time; CPU kernels are slow or missing in fp16, so it stays fp32.
        precision = "fp16" if self.device.type == "cuda" else "fp32"
        self.space = vector_space(model_name, pretrained)
        weights = None if pretrained == RANDOM else pretrained
        if weights is None:
            log.warning("CLIP model '%s' has RANDOM weights: vectors are deterministic but have NO "
                        "retrieval quality; use only for tests and development", model_name)

        # Same seed in every process, so the API and each worker build identical random weights;
        # fork_rng restores the caller's CPU RNG state (open_clip initialises on the CPU).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            try:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    model_name, pretrained=weights, precision=precision, device=self.device)
            except Exception as error:  # no network, no cached copy, a corrupt checkpoint or another model's
                if weights is None:
                    raise
                cause = " ".join(str(error).split())
                raise ModelLoadError(f"CLIP model '{model_name}' could not load its weights '{pretrained}' from "
                                     f"{_weights_source(model_name, pretrained)}: {_FIX}. Cause: {cause}") from error
        self.model = model.eval()
        self.preprocess: Callable[[Image.Image], torch.Tensor] = preprocess
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        self.model_name, self.pretrained, self.precision = model_name, pretrained, precision

        # Every forward pass runs on a batcher's thread, coalescing concurrent callers; callers preprocess
        # (decode, resize, normalise) in parallel beforehand, so the model, not preprocessing, is the limit.
        self._images = MicroBatcher(model_name, "image", self._forward_images, policy)
        self._texts = MicroBatcher(model_name, "text", self._forward_texts, policy)
        self._preprocess_pool = ThreadPoolExecutor(preprocess_workers or os.cpu_count() or 1,
                                                   thread_name_prefix="preprocess")
        self._cache_lock = threading.Lock()
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._text_cache_size = text_cache_size
        self.images_encoded = 0
        self.texts_encoded = 0

    @classmethod
    def from_settings(cls, settings: "Settings") -> "ClipEncoder":
        policy = BatchPolicy(max_batch=settings.runtime_max_batch, max_wait_s=settings.runtime_max_wait_ms / 1000,
                             max_queue=settings.runtime_max_queue, wait_budget_s=settings.runtime_wait_budget_seconds,
                             query_timeout_s=settings.runtime_query_timeout_seconds)
        return cls(settings.clip_model, settings.clip_pretrained, device=settings.clip_device, policy=policy,
                   text_cache_size=settings.text_cache_size, torch_threads=settings.torch_threads,
                   preprocess_workers=settings.preprocess_workers)

    def describe(self) -> dict[str, str | int]:
        return {"model": self.model_name, "pretrained": self.pretrained, "dim": self.space.size,
                "device": str(self.device), "precision": self.precision}

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
        with timed(ENCODER_BATCH_SECONDS, kind="image"), torch.inference_mode():
            features = self.model.encode_image(torch.stack(pixels).to(self.device, self._dtype))
        self.images_encoded += len(pixels)  # only the batcher's thread writes it
        return list(_unit_rows(features))

    def _forward_texts(self, texts: list[str]) -> list[np.ndarray]:
        with timed(ENCODER_BATCH_SECONDS, kind="text"), torch.inference_mode():
            features = self.model.encode_text(self.tokenizer(texts).to(self.device))
        self.texts_encoded += len(texts)
        return list(_unit_rows(features))

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


def _weights_source(model_name: str, pretrained: str) -> str:
    if Path(pretrained).is_file():
        return "the checkpoint file"
    hub = open_clip.get_pretrained_cfg(model_name, pretrained).get("hf_hub", "").rstrip("/")
    return f"the Hugging Face hub ({hub})" if hub else "open_clip's download URL"


def _unit_rows(features: torch.Tensor) -> np.ndarray:
    return F.normalize(features.float(), dim=-1).cpu().numpy()
