"""Where CLIP's forward passes run: PyTorch, or ONNX Runtime (fp32, or int8 weights) on the CPU.

`TROOPLY_CLIP_RUNTIME=auto` serves with ONNX Runtime fp32 on a CPU and PyTorch on CUDA. The ONNX towers are
exported once per model and weights (a fingerprint of both names the folder) under the export folder and reused
at the next start. Before a runtime serves, a fixed probe (generated images and texts) is encoded by PyTorch and
by it: below the probe floor, or when the export fails, the encoder serves with PyTorch (a refused int8 tries
ONNX fp32 first) and says why in one log line and in /readyz. Nothing here ever stops the service from starting.

The vectors of every runtime that passes the probe share the model's vector space: the floor bounds how far a
vector may move (cosine 0.999 fp32, 0.99 int8), well inside the distance between different products.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from trooply.vision.sources import one_line

if TYPE_CHECKING:
    from trooply.config import Settings

log = logging.getLogger(__name__)

AUTO, TORCH, ONNX, ONNX_INT8 = "auto", "torch", "onnx", "onnx-int8"
RUNTIMES = (AUTO, TORCH, ONNX, ONNX_INT8)
# A vector of the chosen runtime against PyTorch's, the lowest over the probe set.
PROBE_FLOOR = {"fp32": 0.999, "int8": 0.99}
OPSET = 17
EXPORT_FORMAT = 1  # bumped when the exported graphs change, so older exports are not reused
IMAGE_FILE, TEXT_FILE, MANIFEST_FILE = "image.onnx", "text.onnx", "manifest.json"
_FINGERPRINT_SAMPLE = 4096  # values per tensor: any retraining or fine-tune moves nearly all of them
_EXPORTING = threading.Lock()  # torch.onnx.export keeps global state: one export at a time in a process
PROBE_TEXTS = ("a red leather handbag", "white running shoes with a blue sole", "oak side table",
               "striped cotton shirt", "x")


class ClipTowers(Protocol):
    """The two forward passes: preprocessed pixels or token ids in, unit vectors (float32 rows) out."""

    def encode_images(self, pixels: torch.Tensor) -> np.ndarray: ...

    def encode_texts(self, tokens: torch.Tensor) -> np.ndarray: ...


class TorchTowers:
    def __init__(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> None:
        self.model, self.device, self.dtype = model, device, dtype

    def encode_images(self, pixels: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return _unit_rows(self.model.encode_image(pixels.to(self.device, self.dtype)))  # type: ignore[operator]

    def encode_texts(self, tokens: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return _unit_rows(self.model.encode_text(tokens.to(self.device)))  # type: ignore[operator]


class OnnxTowers:
    """Two ONNX Runtime sessions on the CPU. Their intra-op threads do not spin while idle: spinning was no faster
    here (README, CPU inference) and would burn the cores the preprocessing pool decodes the next batch on.
    `open` reads an export (the I/O, and its failures); the constructor only holds the sessions."""

    def __init__(self, image: Any, text: Any, threads: int) -> None:
        self._image, self._text, self.threads = image, text, threads

    @classmethod
    def open(cls, folder: Path, threads: int) -> "OnnxTowers":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        return cls(ort.InferenceSession(str(folder / IMAGE_FILE), options, providers=providers),
                   ort.InferenceSession(str(folder / TEXT_FILE), options, providers=providers), threads)

    def encode_images(self, pixels: torch.Tensor) -> np.ndarray:
        features = self._image.run(None, {"pixels": pixels.float().numpy()})[0]
        return _unit_numpy_rows(features)

    def encode_texts(self, tokens: torch.Tensor) -> np.ndarray:
        features = self._text.run(None, {"tokens": tokens.long().numpy()})[0]
        return _unit_numpy_rows(features)


@dataclass(frozen=True)
class RuntimeReport:
    """What serves the model's forward passes, as /readyz shows it."""

    requested: str  # TROOPLY_CLIP_RUNTIME
    runtime: str  # torch | onnx
    precision: str  # fp32 | fp16 | int8
    probe_min_cosine: float | None = None  # against PyTorch, over the probe set
    probe_floor: float | None = None
    export: str | None = None  # "exported in 7.9 s" | "reused"
    folder: str | None = None
    threads: int | None = None  # ONNX Runtime intra-op threads
    fallback: str | None = None  # why the requested runtime is not the one serving

    def describe(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class ExportRequest:
    """What the exporter needs of a loaded model."""

    model: torch.nn.Module
    space: str  # the model's vector space name: the readable part of the folder name
    config: dict[str, Any]
    image_size: tuple[int, int]
    tokenizer: Callable[[Sequence[str]], torch.Tensor]


def export_dir_of(settings: "Settings") -> Path:
    """TROOPLY_CLIP_EXPORT_DIR, else the data dir's `onnx` folder."""
    return settings.clip.export_dir or settings.data_dir / "onnx"


def resolve_runtime(requested: str, device: torch.device) -> str:
    if requested == AUTO:
        return ONNX if device.type == "cpu" else TORCH
    return requested


def ingest_workers(settings: "Settings") -> int:
    """TROOPLY_INGEST_WORKERS, else as many batches in flight as keep the model busy. An ingest batch fetches,
    decodes and colours its images, then waits for one forward pass (the batcher runs one at a time), then
    stores. PyTorch's pass on a CPU is long enough for one other batch to be prepared meanwhile: 2. ONNX
    Runtime's is about a third of that in int8, and with two batches in flight it stood idle while they were
    fetched and stored (int8 ingest 1.7x PyTorch with 2, 2.5x with 4, on 2 cores; README, CPU inference): 2 per
    core, at least 4, and no more than 8 (each holds up to encode_batch_size decoded images)."""
    if settings.ingest.workers is not None:
        return settings.ingest.workers
    device = settings.clip.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if resolve_runtime(settings.clip.runtime, torch.device(device)) == TORCH:
        return 2
    return min(8, max(4, 2 * (os.cpu_count() or 1)))


def select_towers(requested: str, reference: TorchTowers, request: ExportRequest,
                  preprocess: Callable[[Image.Image], torch.Tensor], export_dir: Path | None,
                  threads: int) -> tuple[ClipTowers, RuntimeReport]:
    """The towers that serve, and the report of how they were chosen. A refused int8 tries ONNX Runtime fp32 next
    (still about 1.5x faster than PyTorch for a lone query); whatever is refused falls back to PyTorch. Never raises."""
    if requested not in RUNTIMES:
        raise ValueError(f"TROOPLY_CLIP_RUNTIME must be one of {', '.join(RUNTIMES)}, not {requested!r}")
    torch_precision = "fp16" if reference.dtype == torch.float16 else "fp32"
    chosen = resolve_runtime(requested, reference.device)
    if chosen == TORCH:
        return reference, RuntimeReport(requested, TORCH, torch_precision)
    fallback = RuntimeReport(requested, TORCH, torch_precision)
    if reference.device.type != "cpu":
        return reference, _fell_back(fallback, request.space, chosen, f"ONNX Runtime serves on the CPU here and the "
                                     f"model is on {reference.device.type}")
    if export_dir is None:
        return reference, _fell_back(fallback, request.space, chosen, "no export folder was given")
    precision = "int8" if chosen == ONNX_INT8 else "fp32"
    towers, report, reason = _onnx_towers(requested, reference, request, preprocess, export_dir, threads, precision)
    if towers is not None:
        return towers, report
    if precision == "int8":
        towers, fp32_report, fp32_reason = _onnx_towers(requested, reference, request, preprocess, export_dir,
                                                        threads, "fp32")
        if towers is not None:
            log.warning("CLIP runtime %s refused for '%s': %s; serving with ONNX Runtime fp32", chosen,
                        request.space, reason)
            return towers, RuntimeReport(**(asdict(fp32_report) | {"fallback": f"{chosen}: {reason}"}))
        reason = f"{reason}; then onnx (fp32): {fp32_reason}"
    # The refused runtime's probe figure and folder stay in the report: what to look at, what to delete.
    refused = RuntimeReport(**(asdict(fallback) | {key: getattr(report, key) for key in
                                                   ("probe_min_cosine", "probe_floor", "folder")}))
    return reference, _fell_back(refused, request.space, chosen, reason)


@dataclass(frozen=True)
class OnnxExport:
    """A model's ONNX towers at one precision, in a folder named by the model's space, a fingerprint of its weights
    and the precision: exported once, then reused by every later start (the cache)."""

    request: ExportRequest
    precision: str  # fp32 | int8
    folder: Path

    @classmethod
    def of(cls, request: ExportRequest, export_dir: Path, precision: str) -> "OnnxExport":
        return cls(request, precision, export_dir / f"{request.space}-{fingerprint(request)}-{precision}")

    @property
    def cached(self) -> bool:
        return (self.folder / MANIFEST_FILE).is_file()

    def export_if_missing(self) -> str:
        """How the folder came to be: exported now, or reused from an earlier start."""
        folder, precision = self.folder, self.precision
        with _export_lock(folder):  # the API and its workers starting together: one exports, the others reuse it
            if self.cached:
                return "reused"
            for stale in folder.parent.glob(f".{folder.name}-*"):  # what an export killed midway left: gigabytes
                shutil.rmtree(stale, ignore_errors=True)
            started = time.perf_counter()
            fp32 = folder.with_name(folder.name.removesuffix(f"-{precision}") + "-fp32")
            int8 = precision == "int8"
            export_towers(self.request, folder, int8, fp32 if int8 and (fp32 / MANIFEST_FILE).is_file() else None)
        log.info("exported CLIP model '%s' to ONNX (%s) in %s", self.request.space, precision, folder)
        return f"exported in {time.perf_counter() - started:.1f} s"


def _onnx_towers(requested: str, reference: TorchTowers, request: ExportRequest,
                 preprocess: Callable[[Image.Image], torch.Tensor], export_dir: Path, threads: int,
                 precision: str) -> tuple[OnnxTowers | None, RuntimeReport, str]:
    """ONNX Runtime towers at this precision that passed the probe, or None and why not: exported if missing,
    opened, probed against PyTorch."""
    candidate = OnnxExport.of(request, export_dir, precision)
    folder = candidate.folder
    report = RuntimeReport(requested, ONNX, precision, folder=str(folder), threads=threads)
    try:
        export = candidate.export_if_missing()
        towers = OnnxTowers.open(folder, threads)
    except Exception as error:  # an op the exporter lacks, a full disk, a read-only data dir, a corrupt file
        return None, RuntimeReport(requested, ONNX, precision), f"export to {folder} failed: {_first_line(error)}"
    try:
        figure = probe(reference, towers, preprocess, request.tokenizer)
    except Exception as error:  # a graph that runs at the export's batch size only, say
        return None, report, f"probe failed: {_first_line(error)}"
    floor = PROBE_FLOOR[precision]
    report = RuntimeReport(requested, ONNX, precision, round(figure, 6), floor, export, str(folder), threads)
    if figure < floor:
        return None, report, f"probe cosine {figure:.5f} to PyTorch is below {floor} (delete {folder} to export again)"
    log.info("CLIP model '%s' runs on ONNX Runtime %s, %d threads (probe cosine %.5f to PyTorch; export %s)",
             request.space, precision, threads, figure, export)
    return towers, report, ""


def _fell_back(report: RuntimeReport, space: str, chosen: str, reason: str) -> RuntimeReport:
    log.warning("CLIP runtime %s refused for '%s': %s; serving with PyTorch", chosen, space, reason)
    return RuntimeReport(**(asdict(report) | {"fallback": f"{chosen}: {reason}"}))


def _first_line(error: BaseException) -> str:
    """An exporter's error can carry the whole traced graph: its first line, within reason, is the news."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return one_line(Exception(lines[0]))[:300]


@contextlib.contextmanager
def _export_lock(folder: Path) -> Iterator[None]:
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _EXPORTING, open(folder.parent / f".{folder.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def fingerprint(request: ExportRequest) -> str:
    """The weights (each tensor's name, shape and an evenly spaced sample of its values, bytes as they are), the
    config and the versions that shape the exported graph: a change to any of them exports again. Raw values, not
    sums: a sum's rounding follows the thread count, which differs between the API and a Celery child."""
    import onnxruntime

    digest = hashlib.sha256(json.dumps({
        "format": EXPORT_FORMAT, "opset": OPSET, "torch": torch.__version__, "open_clip": open_clip.__version__,
        "onnxruntime": onnxruntime.__version__, "config": request.config, "image_size": request.image_size,
    }, sort_keys=True, default=str).encode())
    with torch.inference_mode():
        for name, tensor in request.model.state_dict().items():
            flat = tensor.detach().reshape(-1)
            digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}:".encode())
            digest.update(flat[::max(1, flat.numel() // _FINGERPRINT_SAMPLE)].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:12]


class _ImageTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)  # type: ignore[operator]


class _TextTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(tokens)  # type: ignore[operator]


def export_towers(request: ExportRequest, folder: Path, int8: bool, fp32_export: Path | None = None) -> None:
    """Both towers with a dynamic batch axis into `folder`, which appears whole or not at all (a crash mid-export
    leaves only a scratch folder, which the next export does not read). int8 quantizes the fp32 export of the
    same weights where there is one, else exports fp32 first."""
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        plain = fp32_export or (scratch / "fp32" if int8 else scratch)
        if fp32_export is None:
            plain.mkdir(exist_ok=True)
            pixels, tokens = torch.zeros(2, 3, *request.image_size), request.tokenizer(["a photo", "a red shoe"])
            _export(_ImageTower(request.model), pixels, "pixels", plain / IMAGE_FILE)
            _export(_TextTower(request.model), tokens, "tokens", plain / TEXT_FILE)
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            root = logging.getLogger()
            root.addFilter(_quantizer_notes)
            try:
                for name in (IMAGE_FILE, TEXT_FILE):
                    quantize_dynamic(plain / name, scratch / name, weight_type=QuantType.QInt8)
            finally:
                root.removeFilter(_quantizer_notes)
            if fp32_export is None:
                shutil.rmtree(plain)
        (scratch / MANIFEST_FILE).write_text(json.dumps({
            "space": request.space, "precision": "int8" if int8 else "fp32", "opset": OPSET, "format": EXPORT_FORMAT,
            "torch": torch.__version__, "open_clip": open_clip.__version__, "exported_at": time.time(),
            "pid": os.getpid(), "id": uuid.uuid4().hex}, indent=2))
        scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _quantizer_notes(record: logging.LogRecord) -> bool:
    """The quantizer logs a line per tensor it leaves alone, on the root logger: dropped, not the operator's news."""
    return "onnxruntime" not in record.pathname


def _export(tower: torch.nn.Module, example: torch.Tensor, name: str, path: Path) -> None:
    # Not under no_grad: there PyTorch's attention takes a fused fast path the exporter has no ONNX op for.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on constant shapes and the exporter's deprecation
        torch.onnx.export(tower.eval(), (example,), str(path), input_names=[name], output_names=["features"],
                          dynamic_axes={name: {0: "batch"}, "features": {0: "batch"}}, opset_version=OPSET,
                          dynamo=False)


def probe_images() -> list[Image.Image]:
    """Fixed pictures: noise, a gradient, shapes on a colour field and a flat colour, of different sizes."""
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (180, 240, 3), dtype=np.uint8))
    ramp = np.linspace(0, 255, 256, dtype=np.float32)
    gradient = Image.fromarray(np.stack([np.tile(ramp, (200, 1)), np.tile(ramp[::-1], (200, 1)),
                                         np.full((200, 256), 90.0)], -1).astype(np.uint8))
    shapes = Image.new("RGB", (300, 220), (200, 180, 150))
    draw = ImageDraw.Draw(shapes)
    draw.ellipse((40, 30, 180, 170), fill=(150, 20, 40))
    draw.rectangle((160, 90, 280, 200), fill=(20, 60, 140))
    return [noise, gradient, shapes, Image.new("RGB", (128, 128), (30, 140, 60))]


def probe(reference: ClipTowers, candidate: ClipTowers, preprocess: Callable[[Image.Image], torch.Tensor],
          tokenizer: Callable[[Sequence[str]], torch.Tensor]) -> float:
    """The lowest cosine between the two towers' vectors of the probe images and texts (batches of several: the
    exported batch axis is dynamic)."""
    pixels = torch.stack([preprocess(image) for image in probe_images()])
    tokens = tokenizer(list(PROBE_TEXTS))
    cosines = [(reference.encode_images(pixels) * candidate.encode_images(pixels)).sum(axis=1),
               (reference.encode_texts(tokens) * candidate.encode_texts(tokens)).sum(axis=1)]
    lowest = float(np.concatenate(cosines).min())
    return lowest if np.isfinite(lowest) else -1.0


def _unit_rows(features: torch.Tensor) -> np.ndarray:
    return F.normalize(features.float(), dim=-1).cpu().numpy()


def _unit_numpy_rows(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)
