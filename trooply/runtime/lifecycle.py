"""One lifecycle for every model of the process (CLIP, Whisper, the ONNX detector), after Immich's
`InferenceModel`: a loader function does the I/O and turns its failures into clear errors (never a constructor),
`get` loads on first use and marks the model used, `unload` gives the memory back (the next `get` loads again),
and `unload_if_idle` is the idle unload the runtime's janitor calls. What differs between models is only how
calls reach them: CLIP's own micro-batcher threads, a single queued thread for the optional ones (`ModelSlot`).

CLIP's loader (`runtime/inference.py:ModelRuntime._load_clip`) runs in stages: the weights, tokenizer and
preprocessing (`vision/encoder.py:read_clip`), then the runtime that serves them (`serve_clip`): for ONNX Runtime,
fp32 or int8, the towers exported if missing (cached by a fingerprint of the weights), opened and probed against
PyTorch, a refusal falling back (int8 to fp32, then PyTorch) with the reason in the log and /readyz. The optional
models load through `voice/transcriber.py:Transcriber.load` and `vision/detection.py:OnnxDetector.load` (which
checks the graph's contract); their constructors only hold what was loaded."""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
Model = TypeVar("Model")


class ModelLifecycle(Generic[Model]):
    """One model: loaded once on first `get`, whoever asks first; unloaded on request or after `idle_unload_s`
    without a call (never, when None). After `close` the closed model stays: a late caller gets its "closed" error
    rather than a second copy loaded behind the shutdown."""

    def __init__(self, name: str, load: Callable[[], Model], *, unload: Callable[[Model], object] = lambda _m: None,
                 idle_unload_s: float | None = None,
                 describe: Callable[[Model], dict[str, Any]] = lambda _model: {}) -> None:
        self.name = name
        self._load, self._unload, self._describe = load, unload, describe
        self.idle_unload_s = idle_unload_s
        self._model: Model | None = None
        self._last_used = time.monotonic()
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> Model:
        with self._lock:
            if self._model is None:
                started = time.perf_counter()
                self._model = self._load()
                log.info("loaded the %s model in %.1f s", self.name, time.perf_counter() - started)
            self._last_used = time.monotonic()
            return self._model

    def used(self) -> None:
        """A call just ended: the idle time counts from now."""
        self._last_used = time.monotonic()

    @property
    def loaded(self) -> bool:
        return self._model is not None and not self._closed

    def unload(self) -> bool:
        """Whether a loaded model was unloaded."""
        with self._lock:
            model, self._model = self._model, None
        if model is None:
            return False
        self._unload(model)
        return True

    def unload_if_idle(self) -> bool:
        """The caller makes sure no call is in progress (`ModelSlot` runs it on the model's own thread)."""
        if self.idle_unload_s is None or self._model is None:
            return False
        if time.monotonic() - self._last_used < self.idle_unload_s:
            return False
        unloaded = self.unload()
        if unloaded:
            log.info("unloaded the %s model after %.0f s idle", self.name, self.idle_unload_s)
        return unloaded

    def describe(self) -> dict[str, Any]:
        model = self._model
        if model is None or self._closed:
            return {"loaded": False}
        return {"loaded": True, **self._describe(model)}

    def close(self) -> None:
        with self._lock:
            model, self._closed = self._model, True
        if model is not None:
            self._unload(model)
