"""A product's images at ingest: which are fetched, which keep their stored vectors, and how they are stored.

The index holds a product's main vector and, for a product of several images, every image's vector with the
payload's `gallery` naming each row's URL, list position and signals (see `trooply.index.images`). An extra image
whose URL is stored keeps its vector and is never fetched again; the main image too when the job says so (PATCH,
feed syncs), else it is fetched to notice a new picture behind the same URL (its encode is skipped when unchanged).
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trooply.catalog.models import ProductRecord, product_images
from trooply.errors import TrooplyError
from trooply.index.base import IndexPoint
from trooply.index.images import image_named
from trooply.vision.decode import DecodedImage

GALLERY_KEY = "gallery"


@dataclass
class PreparedImage:
    """A fetched and decoded image (`decoded`), or one whose stored vector is kept (`vector`)."""

    signals: dict[str, Any]
    decoded: DecodedImage | None = None
    vector: np.ndarray | None = None


@dataclass
class ImageSlot:
    position: int  # in the merchant's list, 0 the main image
    url: str
    image: PreparedImage


@dataclass
class PreparedProduct:
    main_url: str
    main: PreparedImage
    extras: list[ImageSlot] = field(default_factory=list)  # the extra images ready to store
    image_errors: dict[str, TrooplyError] = field(default_factory=dict)  # extra image URL -> why it failed

    def fetched(self) -> list[ImageSlot]:
        """The images that need an encode: fetched (the main one only when it changed is decided by the caller)."""
        return [slot for slot in self.extras if slot.image.vector is None]


def stored_images(point: IndexPoint | None) -> dict[str, PreparedImage]:
    """The vectors and signals a product has in the index, by image URL."""
    if point is None:
        return {}
    gallery = point.payload.get(GALLERY_KEY)
    if gallery and point.images is not None and len(gallery) == len(point.images):
        return {entry["url"]: PreparedImage(entry.get("image") or {}, vector=point.images[row])
                for row, entry in enumerate(gallery)}
    main_url = (point.payload.get("metadata") or {}).get("image_url")
    return {main_url: PreparedImage(point.payload.get("image") or {}, vector=point.vector)} if main_url else {}


def image_plan(record: ProductRecord, stored: dict[str, PreparedImage],
               keep_main: bool) -> tuple[list[tuple[int, str]], dict[int, PreparedImage]]:
    """The images to fetch (position, url) and those kept as stored (by position)."""
    to_fetch, kept = [], {}
    for position, url in enumerate(product_images(record)):
        if url in stored and (position > 0 or keep_main):
            kept[position] = stored[url]
        else:
            to_fetch.append((position, url))
    return to_fetch, kept


def gallery_rows(main_vector: np.ndarray,
                 prepared: PreparedProduct) -> tuple[np.ndarray | None, list[dict[str, Any]] | None]:
    """What the index stores beside the main vector: every image's vector (main first) and the gallery naming them,
    or (None, None) for a product indexed with its main image alone."""
    if not prepared.extras:
        return None, None
    slots = [ImageSlot(0, prepared.main_url, prepared.main), *prepared.extras]
    vectors = [main_vector, *(np.asarray(slot.image.vector) for slot in prepared.extras)]
    gallery = [{"url": slot.url, "position": slot.position, "image": slot.image.signals} for slot in slots]
    return np.stack(vectors).astype(np.float32), gallery


def image_errors(prepared: PreparedProduct) -> list[dict[str, str]] | None:
    return [{"url": url, "code": error.code} for url, error in prepared.image_errors.items()] or None


def gallery_urls(payload: dict[str, Any]) -> list[str]:
    """The URLs of a stored product's several images, main first; empty for a product of one image."""
    return [entry["url"] for entry in payload.get(GALLERY_KEY) or ()]


def matched_image(payload: dict[str, Any], position: int) -> dict[str, Any]:
    """The image a hit matched ({"url", "position"}, as `index.images.image_named` reads them) and its signals."""
    gallery = payload.get(GALLERY_KEY)
    image = gallery[position].get("image") if gallery and 0 <= position < len(gallery) else payload.get("image")
    return {**image_named(payload, position), "image": image}
