"""The model runtime: owns every model (CLIP, Whisper, the ONNX detector), says what is loaded where, and
runs every forward pass on the runtime's own threads, never on a request thread.

CLIP is loaded and warmed at start and batches concurrent callers (trooply.batching). The optional
models load on first use, run one call at a time on their own thread behind a bounded queue, and are
unloaded after an idle spell: most deployments never pay for them.
"""

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from trooply.batching import Overloaded
from trooply.errors import ServiceUnavailable
from trooply.observability import RUNTIME_SHED
from trooply.runtime.lazy import Lazy
from trooply.scheduling import PeriodicTask

if TYPE_CHECKING:
    from pathlib import Path

    from PIL import Image

    from trooply.config import Settings
    from trooply.vision.detection import Detection, DetectionTimings, OnnxDetector
    from trooply.vision.encoder import ClipEncoder
    from trooply.voice.transcriber import Transcriber

log = logging.getLogger(__name__)
Model = TypeVar("Model")
Result = TypeVar("Result")


class ModelSlot(Generic[Model]):
    """One optional model: loaded on first call, unloaded by `unload_if_idle`, calls queued on one thread."""

    def __init__(self, name: str, load: Callable[[], Model], *, idle_unload_s: float, max_queue: int,
                 describe: Callable[[Model], dict[str, Any]] = lambda _model: {}) -> None:
        self.name = name
        self._load, self._describe = load, describe
        self.idle_unload_s, self.max_queue = idle_unload_s, max_queue
        self._model: Model | None = None
        self._waiting = 0
        self._last_used = time.monotonic()
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
        if self._model is None:
            started = time.perf_counter()
            self._model = self._load()
            log.info("loaded the %s model in %.1f s", self.name, time.perf_counter() - started)
        self._last_used = time.monotonic()
        try:
            return call(self._model)
        finally:
            self._last_used = time.monotonic()

    def unload_if_idle(self) -> bool:
        """Runs on the model's own thread, so it never unloads under a call in progress."""
        return self._executor.submit(self._unload_if_idle).result()

    def _unload_if_idle(self) -> bool:
        if self._model is None or time.monotonic() - self._last_used < self.idle_unload_s:
            return False
        self._model = None
        log.info("unloaded the %s model after %.0f s idle", self.name, self.idle_unload_s)
        return True

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def status(self) -> dict[str, Any]:
        model = self._model
        return {"loaded": model is not None, "waiting": self._waiting,
                **(self._describe(model) if model is not None else {})}

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True)
        self._model = None


class ModelRuntime:
    """Every model of the process and where it runs: CLIP (loaded at start), Whisper and the ONNX detector
    (optional, behind slots). `describe()` is the one place that says what is loaded, on which device and
    in which precision."""

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        # CLIP models by (model, pretrained), each loaded once on first use: the active one, and while a model
        # migration runs (until its cleanup) the other one, where ingest or the migration needs it.
        self._clips: dict[tuple[str, str], Lazy[ClipEncoder]] = {}
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

    def follow(self, active_model: Callable[[], tuple[str, str]]) -> None:
        """Where the active CLIP model is decided (the model state in SQL) instead of the settings."""
        self._active_model = active_model

    def clip(self) -> "ClipEncoder":
        """The active CLIP model's encoder."""
        return self.clip_for(*self._active_model())

    def clip_for(self, model: str, pretrained: str) -> "ClipEncoder":
        with self._clips_lock:
            lazy = self._clips.get((model, pretrained))
            if lazy is None:
                lazy = self._clips[model, pretrained] = Lazy(lambda: self._load_clip(model, pretrained))
        return lazy()

    def release_clips(self, keep: set[tuple[str, str]]) -> list[str]:
        """Closes the CLIP models not in `keep` (a model a cleanup retired); a later call loads one again."""
        with self._clips_lock:
            released = {key: lazy for key, lazy in self._clips.items() if key not in keep}
            for key in released:
                del self._clips[key]
        for lazy in released.values():
            lazy.close(lambda clip: clip.close())
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
        lazy = clips.pop(active, None)
        models = {"clip": {"loaded": lazy is not None and lazy.opened,
                           **(lazy().describe() if lazy is not None and lazy.opened else {})}}
        # The other model of a migration, where loaded: its own entry, so `clip` stays the one searches use.
        others = {f"clip:{model}": {"loaded": True, **other().describe()}
                  for (model, _pretrained), other in clips.items() if other.opened}
        return models | others | {slot.name: slot.status() for slot in self._slots()}

    def stop(self) -> None:
        if self._janitor is not None:
            self._janitor.stop()
        for slot in self._slots():
            slot.close()
        with self._clips_lock:
            clips = list(self._clips.values())
        for lazy in clips:  # closed, and kept: a late caller gets the closed encoder's error, never a new copy
            lazy.close(lambda clip: clip.close())

    def _slots(self) -> list[ModelSlot]:
        return [self.whisper] + ([self.detector] if self.detector is not None else [])

    def _load_clip(self, model: str, pretrained: str) -> "ClipEncoder":
        from trooply.vision.encoder import ClipEncoder

        return ClipEncoder.from_settings(self.settings.updated(clip_model=model, clip_pretrained=pretrained))

    def _load_whisper(self) -> "Transcriber":
        from trooply.voice.transcriber import Transcriber

        voice = self.settings.voice
        return Transcriber(voice.whisper_model, voice.max_audio_bytes, voice.max_audio_seconds)

    def _load_detector(self, path: "Path") -> "OnnxDetector":
        from trooply.vision.detection import OnnxDetector

        return OnnxDetector(path, self.settings.detection.onnx_input_size)


class SlotDetector:
    """The ONNX detector as a Detector: each call runs on its slot's thread, loading it when needed."""

    def __init__(self, slot: ModelSlot["OnnxDetector"]) -> None:
        self.slot = slot

    def detect(self, image: "Image.Image") -> "tuple[list[Detection], DetectionTimings]":
        return self.slot.run(lambda detector: detector.detect(image))
