"""What turns a shopper's input into a query vector: pictures decoded safely (and, for street photos, cut to
the most prominent item), CLIP for pictures and words, speech recognition for audio. Every forward pass
is timed into the request's context."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from trooply.detection.service import DetectionService
from trooply.search.context import SearchContext
from trooply.vision.encoder import ClipEncoder
from trooply.vision.query_image import QueryImageLoader


@dataclass(frozen=True)
class QueryEncoders:
    clip: Callable[[], ClipEncoder]  # loaded on first use: a process that never searches never loads it
    transcribe: Callable[[bytes], str]
    images: QueryImageLoader
    items: DetectionService

    def text(self, context: SearchContext, words: str) -> np.ndarray:
        return context.in_model(lambda: self.clip().encode_text(words))

    def image_vector(self, context: SearchContext, picture: Image.Image) -> np.ndarray:
        return self.image_vectors(context, [picture])[0]

    def image_vectors(self, context: SearchContext, pictures: Sequence[Image.Image]) -> np.ndarray:
        return context.in_model(lambda: self.clip().encode_images(pictures))

    def transcript(self, context: SearchContext, audio: bytes) -> str:
        return context.in_transcriber(lambda: self.transcribe(audio))
