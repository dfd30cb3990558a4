"""The model runtime: owns every model (CLIP, Whisper, the ONNX detector), each through the one lifecycle of
runtime/lifecycle.py, says what is loaded where, and runs every forward pass on the runtime's own threads, never on
a request thread.

CLIP is loaded and warmed at start and batches concurrent callers (trooply.batching). The optional
models load on first use, run one call at a time on their own thread behind a bounded queue, and are
unloaded after an idle spell: most deployments never pay for them.
"""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from trooply.batching import BatchPolicy, Overloaded
from trooply.errors import ServiceUnavailable
from trooply.observability import RUNTIME_SHED
from trooply.runtime.lifecycle import ModelLifecycle
from trooply.scheduling import PeriodicTask

if TYPE_CHECKING:
    from pathlib import Path

    from PIL import Image

    from trooply.config import RuntimeSettings, Settings
    from trooply.vision.detection import Detection, DetectionTimings, OnnxDetector
    from trooply.vision.encoder import ClipEncoder
    from trooply.voice.transcriber import Transcriber

log = logging.getLogger(__name__)
Model = TypeVar("Model")
Result = TypeVar("Result")


class ModelSlot(Generic[Model]):
    """An optional model (Whisper, the ONNX detector): its lifecycle, unloaded after an idle spell, and its calls
    queued on one thread of its own."""

    def __init__(self, name: str, load: Callable[[], Model], *, idle_unload_s: float, max_queue: int,
                 describe: Callable[[Model], dict[str, Any]] = lambda _model: {}) -> None:
        self.name = name
        self.model = ModelLifecycle(name, load, idle_unload_s=idle_unload_s, describe=describe)
        self.max_queue = max_queue
        self._waiting = 0
        self._lock = threading.Lock()
        self._closed = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"model-{name}")

    def run(self, call: Callable[[Model], Result]) -> Result:
        with self._lock:
            if self._closed:
                raise ServiceUnavailable(f"the {self.name} model is shutting down", code="shutting_down")
            if self._waiting >= self.max_queue:
                RUNTIME_SHED.labels(self.name).inc()
                raise Overloaded(f"the {self.name} model is saturated; retry shortly",
                                 details={"retry_after": 1})
            self._waiting += 1
        try:
            return self._executor.submit(self._call, call).result()
        finally:
            with self._lock:
                self._waiting -= 1

    def _call(self, call: Callable[[Model], Result]) -> Result:
        try:
            return call(self.model.get())
        finally:
            self.model.used()

    def unload_if_idle(self) -> bool:
        """Runs on the model's own thread, so it never unloads under a call in progress."""
        return self._executor.submit(self.model.unload_if_idle).result()

    @property
    def loaded(self) -> bool:
        return self.model.loaded

    def status(self) -> dict[str, Any]:
        described = self.model.describe()
        return {"loaded": described.pop("loaded"), "waiting": self._waiting, **described}

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True)
        self.model.close()


class ModelRuntime:
    """Every model of the process and where it runs: CLIP (loaded at start), Whisper and the ONNX detector
    (optional, behind slots). `describe()` is the one place that says what is loaded, on which device and
    in which precision."""

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        # CLIP models by (model, pretrained), each loaded once on first use: the active one, and while a model
        # migration runs (until its cleanup) the other one, where ingest or the migration needs it.
        self._clips: dict[tuple[str, str], ModelLifecycle[ClipEncoder]] = {}
        self._clips_lock = threading.Lock()
        self._active_model: Callable[[], tuple[str, str]] = lambda: (settings.clip.model, settings.clip.pretrained)
        idle_s, max_queue = settings.runtime.idle_unload_seconds, settings.runtime.max_queue
        self.whisper: ModelSlot[Transcriber] = ModelSlot(
            "whisper", self._load_whisper, idle_unload_s=idle_s, max_queue=max_queue,
            describe=lambda t: {"model": t.model_path, "device": t.device, "precision": t.compute_type})
        self.detector: ModelSlot[OnnxDetector] | None = None
        if settings.detection.detector == "onnx":
            onnx_path = settings.detection.onnx_path
            if onnx_path is None:
                raise ValueError("TROOPLY_DETECTOR=onnx needs TROOPLY_DETECTOR_ONNX_PATH")
            self.detector = ModelSlot("detector", lambda: self._load_detector(onnx_path), idle_unload_s=idle_s,
                                      max_queue=max_queue, describe=lambda d: d.describe())
        self._janitor: PeriodicTask | None = None

    def follow_active_model(self, active_model: Callable[[], tuple[str, str]]) -> None:
        """Where the active CLIP model is decided (the model state in SQL) instead of the settings."""
        self._active_model = active_model

    def clip(self) -> "ClipEncoder":
        """The active CLIP model's encoder."""
        return self.clip_for(*self._active_model())

    def clip_for(self, model: str, pretrained: str) -> "ClipEncoder":
        with self._clips_lock:
            clip = self._clips.get((model, pretrained))
            if clip is None:
                clip = self._clips[model, pretrained] = ModelLifecycle(
                    f"CLIP {model}", lambda: self._load_clip(model, pretrained), unload=lambda encoder: encoder.close(),
                    describe=lambda encoder: encoder.describe())
        return clip.get()

    def release_clips(self, keep: set[tuple[str, str]]) -> list[str]:
        """Closes the CLIP models not in `keep` (a model a cleanup retired); a later call loads one again."""
        with self._clips_lock:
            released = {key: lazy for key, lazy in self._clips.items() if key not in keep}
            for key in released:
                del self._clips[key]
        for clip in released.values():
            clip.close()
        return [model for model, _pretrained in released]

    def start(self) -> None:
        """Loads CLIP now (the first query must not pay for it) and starts unloading idle optional models."""
        self.clip()
        interval = min(60.0, self.settings.runtime.idle_unload_seconds / 2)
        self._janitor = PeriodicTask(interval, self.unload_idle, "model-janitor")

    def transcribe(self, audio: bytes) -> str:
        return self.whisper.run(lambda transcriber: transcriber.transcribe(audio))

    def unload_idle(self) -> list[str]:
        return [slot.name for slot in self._slots() if slot.unload_if_idle()]

    def describe(self) -> dict[str, dict[str, Any]]:
        active = self._active_model()
        with self._clips_lock:
            clips = dict(self._clips)
        clip = clips.pop(active, None)
        # Described without `get`: a health check must not count as a use that keeps a model from its idle unload.
        models = {"clip": clip.describe() if clip is not None else {"loaded": False}}
        # The other model of a migration, where loaded: its own entry, so `clip` stays the one searches use.
        others = {f"clip:{model}": other.describe() for (model, _pretrained), other in clips.items() if other.loaded}
        return models | others | {slot.name: slot.status() for slot in self._slots()}

    def stop(self) -> None:
        if self._janitor is not None:
            self._janitor.stop()
        for slot in self._slots():
            slot.close()
        with self._clips_lock:
            clips = list(self._clips.values())
        for clip in clips:  # closed, and kept: a late caller gets the closed encoder's error, never a new copy
            clip.close()

    def _slots(self) -> list[ModelSlot]:
        return [self.whisper] + ([self.detector] if self.detector is not None else [])

    def _load_clip(self, model: str, pretrained: str) -> "ClipEncoder":
        """CLIP's load, in its stages: the weights (a failure says what to fix), then the runtime that runs them
        (ONNX Runtime exported if missing, probed, else a fallback that says why), then the encoder around both.
        The active model and a migration's other one load alike, from the same runtime settings."""
        from trooply.vision.clip_runtime import export_dir_of
        from trooply.vision.encoder import ClipEncoder

        clip, runtime = self.settings.clip, self.settings.runtime
        return ClipEncoder.load(model, pretrained, clip.device, batch_policy(runtime), runtime.text_cache_size,
                                runtime.torch_threads, runtime.preprocess_workers, clip.runtime,
                                export_dir_of(self.settings), runtime.onnx_threads)

    def _load_whisper(self) -> "Transcriber":
        from trooply.voice.transcriber import Transcriber

        voice = self.settings.voice
        return Transcriber.load(voice.whisper_model, voice.max_audio_bytes, voice.max_audio_seconds)

    def _load_detector(self, path: "Path") -> "OnnxDetector":
        from trooply.vision.detection import OnnxDetector

        return OnnxDetector.load(path, self.settings.detection.onnx_input_size)


def batch_policy(runtime: "RuntimeSettings") -> BatchPolicy:
    """How CLIP's micro-batchers coalesce callers and shed load."""
    return BatchPolicy(max_batch=runtime.max_batch, max_ingest_batch=runtime.max_ingest_batch,
                       max_wait_s=runtime.max_wait_ms / 1000, max_queue=runtime.max_queue,
                       wait_budget_s=runtime.wait_budget_seconds, query_timeout_s=runtime.query_timeout_seconds)


class SlotDetector:
    """The ONNX detector as a Detector: each call runs on its slot's thread, loading it when needed."""

    def __init__(self, slot: ModelSlot["OnnxDetector"]) -> None:
        self.slot = slot

    def detect(self, image: "Image.Image") -> "tuple[list[Detection], DetectionTimings]":
        return self.slot.run(lambda detector: detector.detect(image))
