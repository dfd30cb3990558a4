"""Fashion item detection behind one interface: zero-shot on CLIP (default, no extra weights) or a
trained detector exported to ONNX.

Zero-shot: class-agnostic region proposals (Felzenszwalb segments merged hierarchically by colour,
size and fill, as in selective search, plus the whole image), each crop scored by CLIP against every
class's prompts and a background (at the model's own logit scale and bias), then per-class non-maximum
suppression.
"""

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml
from PIL import Image, ImageDraw
from skimage.segmentation import felzenszwalb

from trooply.batching import INGEST
from trooply.vision.decode import pixel_crop
from trooply.vision.encoder import ClipEncoder

_CLASSES_FILE = Path(__file__).with_name("detection_classes.yaml")
_SPEC = yaml.safe_load(_CLASSES_FILE.read_text())
CLASS_NAMES: dict[int, str] = {c["id"]: c["name"] for c in _SPEC["classes"]}
CLASS_PROMPTS: dict[int, list[str]] = {c["id"]: c["prompts"] for c in _SPEC["classes"]}
BACKGROUND_PROMPTS: list[str] = _SPEC["background"]
NMS_IOU = 0.5

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Detection:
    class_id: int
    score: float
    box: Box  # x1, y1, x2, y2 in pixels of the upright image

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.class_id]


@dataclass(frozen=True)
class DetectionTimings:
    proposals_ms: float = 0.0
    scoring_ms: float = 0.0
    nms_ms: float = 0.0


class Detector(Protocol):
    def detect(self, image: Image.Image) -> tuple[list[Detection], DetectionTimings]:
        """Every candidate detection, scored, before NMS and top-k (callers apply `finalise`)."""


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def non_max_suppression(detections: Sequence[Detection], threshold: float = NMS_IOU) -> list[Detection]:
    """Per class: keep the best box, drop the boxes of the same class overlapping it by more than threshold."""
    kept: list[Detection] = []
    for detection in sorted(detections, key=lambda d: d.score, reverse=True):
        if all(k.class_id != detection.class_id or iou(k.box, detection.box) <= threshold for k in kept):
            kept.append(detection)
    return kept


def finalise(detections: Sequence[Detection], top_k: int, classes: set[int] | None) -> list[Detection]:
    wanted = [d for d in detections if classes is None or d.class_id in classes]
    return non_max_suppression(wanted)[:top_k]


def as_box(values: Sequence[float]) -> Box:
    """Four coordinates (numpy scalars, JSON numbers) as a box of Python floats."""
    x1, y1, x2, y2 = map(float, values)
    return x1, y1, x2, y2


def clip_box(box: Sequence[float], width: int, height: int) -> Box | None:
    """The whole pixels of the image a box covers (crops are taken that way): widened to the pixel grid and
    clipped to the image; None when it covers none, or a coordinate is not a number."""
    if not all(math.isfinite(v) for v in box):
        return None
    # Rounded first, so that float noise (2.0000000001) does not widen a box by a pixel.
    x1, y1, x2, y2 = (round(float(v), 6) for v in box)
    x1, y1 = max(0, math.floor(x1)), max(0, math.floor(y1))
    x2, y2 = min(width, math.ceil(x2)), min(height, math.ceil(y2))
    return (float(x1), float(y1), float(x2), float(y2)) if x1 < x2 and y1 < y2 else None


def area_ratio(box: Box, width: int, height: int) -> float:
    return (box[2] - box[0]) * (box[3] - box[1]) / (width * height)


def center_distance_ratio(box: Box, width: int, height: int) -> float:
    """Distance from the box centre to the image centre, over half the image diagonal: 0 centred, 1 a corner."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return math.hypot(cx - width / 2, cy - height / 2) / (math.hypot(width, height) / 2)


def prominence(detection: Detection, width: int, height: int) -> float:
    """How much a detection is *the* subject: confident, large and central (each factor in [0, 1])."""
    size = math.sqrt(area_ratio(detection.box, width, height))
    centrality = 1.0 - center_distance_ratio(detection.box, width, height)
    return detection.score * (0.5 + 0.5 * size) * (0.5 + 0.5 * centrality)


def annotate(image: Image.Image, detections: Sequence[Detection]) -> Image.Image:
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    for detection in detections:
        draw.rectangle(detection.box, outline=(255, 40, 40), width=max(2, canvas.width // 300))
        label = f"{detection.class_name} {detection.score:.2f}"
        x, y = detection.box[0], max(0.0, detection.box[1] - 12)
        draw.rectangle(draw.textbbox((x, y), label), fill=(255, 40, 40))
        draw.text((x, y), label, fill=(255, 255, 255))
    return canvas


class ZeroShotDetector:
    def __init__(self, encoder: Callable[[], ClipEncoder], max_proposals: int = 48, working_side: int = 320) -> None:
        self._encoder = encoder
        self.max_proposals = max_proposals
        self.working_side = working_side
        self._prompts: np.ndarray | None = None
        self._lock = threading.Lock()

    def detect(self, image: Image.Image) -> tuple[list[Detection], DetectionTimings]:
        started = time.perf_counter()
        boxes = region_proposals(image, self.max_proposals, self.working_side)
        proposed = time.perf_counter()
        crops = [pixel_crop(image, box) for box in boxes]
        probabilities = self.class_probabilities(self._encoder().encode_images(crops))
        scored = time.perf_counter()
        detections = [Detection(int(np.argmax(p[:-1])), round(float(np.max(p[:-1])), 4), box)
                      for box, p in zip(boxes, probabilities, strict=True)]
        return detections, DetectionTimings((proposed - started) * 1000, (scored - proposed) * 1000)

    def class_probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """A distribution over the ten classes and the background (last column), at the model's own logit scale
        and bias (trooply.vision.scoring)."""
        return self._encoder().scoring.choice_probabilities(vectors @ self._class_matrix().T)

    def _class_matrix(self) -> np.ndarray:
        with self._lock:
            if self._prompts is None:
                groups = [CLASS_PROMPTS[i] for i in sorted(CLASS_PROMPTS)] + [BACKGROUND_PROMPTS]
                encoder = self._encoder()
                rows = [encoder.encode_texts(prompts, priority=INGEST).mean(axis=0) for prompts in groups]
                self._prompts = np.stack([r / np.linalg.norm(r) for r in rows]).astype(np.float32)
            return self._prompts


def region_proposals(image: Image.Image, limit: int, working_side: int = 320) -> list[Box]:
    """Boxes in pixels of `image`: the whole image first, then hierarchical groupings of segments."""
    scale = working_side / max(image.size)
    small = image.convert("RGB").resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    pixels = np.asarray(small, dtype=np.float64) / 255.0
    labels = felzenszwalb(pixels, scale=200, sigma=0.8, min_size=max(20, pixels.shape[0] * pixels.shape[1] // 400))
    boxes = [(0.0, 0.0, float(small.width), float(small.height))] + _hierarchical_boxes(pixels, labels)
    min_area = 0.005 * small.width * small.height
    unique: list[Box] = []
    for box in boxes:
        if (box[2] - box[0]) * (box[3] - box[1]) >= min_area and all(iou(box, u) < 0.9 for u in unique):
            unique.append(box)
    # Per axis: the thin side of a 39000x1 image rounds to one working pixel, far from 320/39000 of one.
    sx, sy = image.width / small.width, image.height / small.height
    clipped = (clip_box((b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy), image.width, image.height)
               for b in _spread(unique, limit))
    return [box for box in clipped if box is not None]


def _spread(boxes: list[Box], limit: int) -> list[Box]:
    """At most `limit` boxes, the whole image kept, the rest chosen evenly over sizes."""
    if len(boxes) <= limit:
        return boxes
    rest = sorted(boxes[1:], key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    picks = np.linspace(0, len(rest) - 1, limit - 1).round().astype(int)
    return [boxes[0]] + [rest[i] for i in dict.fromkeys(picks)]


@dataclass
class _Region:
    box: list[float]
    size: int
    colour: np.ndarray  # mean RGB


def _hierarchical_boxes(pixels: np.ndarray, labels: np.ndarray) -> list[Box]:
    """Selective-search grouping: repeatedly merge the most similar adjacent pair, recording each box."""
    height, width = labels.shape
    regions: dict[int, _Region] = {}
    for label in np.unique(labels):
        ys, xs = np.nonzero(labels == label)
        regions[int(label)] = _Region([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], len(xs),
                                      pixels[ys, xs].mean(axis=0))
    pairs = np.concatenate([np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
                            np.stack([labels[:-1].ravel(), labels[1:].ravel()], 1)])
    pairs = np.unique(np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1), axis=0)
    neighbours: dict[int, set[int]] = {label: set() for label in regions}
    for a, b in pairs:
        neighbours[int(a)].add(int(b))
        neighbours[int(b)].add(int(a))
    total = height * width
    boxes = [as_box(r.box) for r in regions.values()]
    next_label = max(regions) + 1
    while True:
        candidates = [(a, b) for a in neighbours for b in neighbours[a] if a < b]
        if not candidates:
            return boxes
        a, b = max(candidates, key=lambda pair: _similarity(regions[pair[0]], regions[pair[1]], total))
        merged = _merge(regions.pop(a), regions.pop(b))
        regions[next_label] = merged
        neighbours[next_label] = (neighbours.pop(a) | neighbours.pop(b)) - {a, b}
        for other in neighbours[next_label]:
            neighbours[other] = (neighbours[other] - {a, b}) | {next_label}
        boxes.append(as_box(merged.box))
        next_label += 1


def _similarity(r: _Region, s: _Region, total: int) -> float:
    colour = 1.0 - float(np.abs(r.colour - s.colour).sum()) / 3.0
    size = 1.0 - (r.size + s.size) / total
    box = [min(r.box[0], s.box[0]), min(r.box[1], s.box[1]), max(r.box[2], s.box[2]), max(r.box[3], s.box[3])]
    fill = 1.0 - ((box[2] - box[0]) * (box[3] - box[1]) - r.size - s.size) / total
    return colour + size + fill


def _merge(r: _Region, s: _Region) -> _Region:
    size = r.size + s.size
    box = [min(r.box[0], s.box[0]), min(r.box[1], s.box[1]), max(r.box[2], s.box[2]), max(r.box[3], s.box[3])]
    return _Region(box, size, (r.colour * r.size + s.colour * s.size) / size)


class OnnxDetector:
    """A trained detector exported to ONNX. Contract: input float32 [1, 3, H, W] RGB in [0, 1] (H, W from
    the model, else `input_size`); outputs `boxes` [N, 4] (x1, y1, x2, y2 in input pixels), `scores` [N]
    in [0, 1] and `labels` [N] (our class ids). `load` reads the graph and checks that contract; the constructor
    only holds the session."""

    def __init__(self, session: Any, path: str, input_size: int = 640) -> None:
        self.session = session
        spec = session.get_inputs()[0]
        height, width = spec.shape[2], spec.shape[3]
        self.input_name = spec.name
        self.size = (width if isinstance(width, int) else input_size, height if isinstance(height, int) else input_size)
        self.path = path

    @classmethod
    def load(cls, path: str | Path, input_size: int = 640) -> "OnnxDetector":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=onnxruntime.get_available_providers())
        outputs = {o.name for o in session.get_outputs()}
        if not {"boxes", "scores", "labels"} <= outputs:
            raise ValueError(f"{path}: an ONNX detector must output boxes, scores and labels; it has {sorted(outputs)}")
        return cls(session, str(path), input_size)

    def describe(self) -> dict[str, object]:
        return {"model": self.path, "providers": self.session.get_providers(), "input_size": list(self.size)}

    def detect(self, image: Image.Image) -> tuple[list[Detection], DetectionTimings]:
        started = time.perf_counter()
        resized = np.asarray(image.convert("RGB").resize(self.size), dtype=np.float32) / 255.0
        boxes, scores, labels = self.session.run(["boxes", "scores", "labels"],
                                                 {self.input_name: resized.transpose(2, 0, 1)[None]})
        sx, sy = image.width / self.size[0], image.height / self.size[1]
        clipped = [(clip_box((b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy), image.width, image.height), score, label)
                   for b, score, label in zip(boxes, scores, labels, strict=False)]
        detections = [Detection(int(label), round(float(score), 4), box) for box, score, label in clipped
                      if box is not None and math.isfinite(score) and int(label) in CLASS_NAMES]
        return detections, DetectionTimings(scoring_ms=(time.perf_counter() - started) * 1000)
