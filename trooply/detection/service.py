"""Items in a photo: detect them, tag and embed each one, score it against text — metered per tenant."""

import base64
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from trooply.detection.schemas import MAX_ITEMS
from trooply.errors import InvalidRequest, TrooplyError
from trooply.tenancy.usage import UsageService
from trooply.vision.decode import DecodedImage, crop_image
from trooply.vision.detection import (
    CLASS_NAMES,
    Detection,
    DetectionTimings,
    Detector,
    ZeroShotDetector,
    annotate,
    area_ratio,
    as_box,
    center_distance_ratio,
    clip_box,
    finalise,
    prominence,
)
from trooply.vision.encoder import ClipEncoder
from trooply.vision.query_image import QueryImage, QueryImageLoader

DEFAULT_EMBED_TOP_K = 5


@dataclass
class DetectedItem:
    detection: Detection
    area_ratio: float
    center_distance_ratio: float


@dataclass
class DetectResult:
    width: int
    height: int
    items: list[DetectedItem]
    timings: DetectionTimings
    annotated_png: str | None = None


@dataclass
class EmbedResult:
    boxes: list[tuple[float, float, float, float]]
    tags: list[tuple[str, float]] | None
    embeddings: np.ndarray | None
    text_relevance: list[float] | list[list[float]] | None


class DetectionService:
    def __init__(self, loader: QueryImageLoader, detector: Detector, tagger: ZeroShotDetector,
                 encoder: Callable[[], ClipEncoder], usage: UsageService) -> None:
        self.loader = loader
        self.detector = detector
        self.tagger = tagger  # CLIP's zero-shot class scores, whichever detector finds the boxes
        self._encoder = encoder
        self.usage = usage

    def detect(self, tenant_id: str, image: QueryImage, top_k: int, classes: Sequence[int] | None,
               return_image: bool) -> DetectResult:
        wanted = _check_classes(classes)
        self.usage.consume(tenant_id, "detect")
        decoded = self.loader.decode(image)
        width, height = decoded.width, decoded.height
        detections, timings = self._detect(decoded, top_k, wanted)
        items = [DetectedItem(d, round(area_ratio(d.box, width, height), 4),
                              round(center_distance_ratio(d.box, width, height), 4)) for d in detections]
        drawn = [_scaled(d, *decoded.scale) for d in detections]
        png = _png_base64(annotate(decoded.image, drawn)) if return_image else None
        return DetectResult(width, height, items, timings, png)

    def embed(self, tenant_id: str, image: QueryImage, boxes: Sequence[Sequence[float]] | None, top_k: int | None,
              text: str | list[str] | None, with_tag: bool, with_embedding: bool) -> EmbedResult:
        self.usage.consume(tenant_id, "embed")
        decoded = self.loader.decode(image)
        if boxes is None:
            # Detected boxes lie inside the image, however thin it is: no caller's box to find fault with.
            boxes = [d.box for d in self._detect(decoded, top_k or DEFAULT_EMBED_TOP_K, None)[0]]
            crops = [decoded.crop(box) for box in boxes]
        else:
            crops = [_caller_crop(decoded, index, box) for index, box in enumerate(boxes)]
        vectors = self._encoder().encode_images(crops) if crops else np.empty((0, 0), np.float32)
        tags = None
        if with_tag and crops:
            probabilities = self.tagger.class_probabilities(vectors)[:, :-1]
            probabilities /= probabilities.sum(axis=1, keepdims=True)  # over the ten classes, background left out
            tags = [(CLASS_NAMES[int(np.argmax(p))], round(float(np.max(p)), 4)) for p in probabilities]
        elif with_tag:
            tags = []
        return EmbedResult([as_box(box) for box in boxes], tags,
                           vectors if with_embedding else None, self._relevance(vectors, text))

    def most_prominent(self, tenant_id: str, decoded: DecodedImage, detect_class: int | None) -> Detection | None:
        wanted = _check_classes([detect_class] if detect_class is not None else None)
        self.usage.consume(tenant_id, "detect")
        detections, _ = self._detect(decoded, MAX_ITEMS, wanted)
        return max(detections, key=lambda d: prominence(d, decoded.width, decoded.height), default=None)

    def _detect(self, decoded: DecodedImage, top_k: int,
                classes: set[int] | None) -> tuple[list[Detection], DetectionTimings]:
        candidates, timings = self.detector.detect(decoded.image)
        started = time.perf_counter()
        kept = finalise(_in_original(candidates, decoded), top_k, classes)
        return kept, DetectionTimings(timings.proposals_ms, timings.scoring_ms, (time.perf_counter() - started) * 1000)

    def _relevance(self, vectors: np.ndarray, text: str | list[str] | None) -> list[float] | list[list[float]] | None:
        if text is None:
            return None
        texts = [text] if isinstance(text, str) else text
        encoder = self._encoder()
        text_vectors = encoder.encode_texts(texts)
        # The model's own match probability where it has one (SigLIP), else the cosine mapped to [0, 1].
        relevance: np.ndarray | list[list[float]] = (encoder.scoring.relevance(vectors @ text_vectors.T)
                                                     if len(vectors) else [])
        scores = [[round(float(score), 4) for score in row] for row in relevance]
        return [row[0] for row in scores] if isinstance(text, str) else scores


def _scaled(detection: Detection, sx: float, sy: float) -> Detection:
    x1, y1, x2, y2 = detection.box
    return replace(detection, box=(x1 * sx, y1 * sy, x2 * sx, y2 * sy))


def _in_original(detections: Sequence[Detection], decoded: DecodedImage) -> list[Detection]:
    """Boxes from the decoded pixels to the original image's, clipped to it."""
    sx, sy = decoded.scale
    boxes = [clip_box(_scaled(d, 1 / sx, 1 / sy).box, decoded.width, decoded.height) for d in detections]
    return [replace(d, box=box) for d, box in zip(detections, boxes, strict=True) if box is not None]


def _caller_crop(decoded: DecodedImage, index: int, box: Sequence[float]) -> Image.Image:
    try:
        return crop_image(decoded, box)
    except TrooplyError as error:
        raise error.for_item(f"bounding_boxes[{index}]", index) from error


def _check_classes(classes: Sequence[int] | None) -> set[int] | None:
    if classes is None:
        return None
    unknown = sorted(set(classes) - set(CLASS_NAMES))
    if unknown:
        names = ", ".join(f"{i} {n}" for i, n in CLASS_NAMES.items())
        raise InvalidRequest(f"unknown class id {unknown[0]}; ids are 0-9 ({names})", code="unknown_class")
    return set(classes)


def _png_base64(image: Image.Image) -> str:
    out = io.BytesIO()
    image.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")
