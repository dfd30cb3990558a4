"""Several images per product: how both engines store and search them.

A product keeps its main image's dense vector (the space's own, as before); a product with several images also
holds every image, main first, in the multivector `IMAGES_VECTOR`, scored with MaxSim: against a one-vector query
that is the cosine of its closest image. A search asks both in one batched call and scores each product by its
better leg, so a product is found once, by its closest image, and products stored before several images (or with
one image) need no re-encode. README "Several images per product" has the measurement behind this layout.
"""

from collections.abc import Sequence
from dataclasses import replace
from operator import mul
from typing import Any, cast

import numpy as np

from trooply.index.base import (
    HybridHits,
    HybridQuery,
    IndexHit,
    ScoredStoredPoint,
    StoredPoint,
    point_hit,
    point_payload,
)
from trooply.index.words import WORDS_VECTOR

IMAGES_VECTOR = "images"
# What a neighbour (duplicates) or a scrolled point brings back: its id and which URL each of its images is (the
# catalogue's payload: `metadata.image_url` for the main image, `gallery` for a product of several).
NAMED_IMAGES_PAYLOAD = ["product_id", "metadata.image_url", "gallery[].url", "gallery[].position"]


def stored_images(point: StoredPoint) -> np.ndarray | None:
    """The point's multivector (one row per image, main first), or None for a product of one image."""
    vectors = cast(dict[str, Any], point.vector or {})
    rows = vectors.get(IMAGES_VECTOR)
    return None if not rows else np.asarray(rows, dtype=np.float32)


def images_to_store(images: np.ndarray | None) -> list[list[float]] | None:
    """What goes into the multivector: nothing for a product of one image (its main vector says it all)."""
    if images is None or len(images) < 2:
        return None
    return np.asarray(images, dtype=np.float32).tolist()


def closest_image(rows: Sequence[Sequence[float]], target: Sequence[float]) -> tuple[int, float]:
    """The position of the image closest to the query, and its cosine (stored vectors are unit length; `target` is
    the query as sent, `base.unit_floats`). In Python on the engine's float lists: right after the engine's call
    numpy's first operations run ~25x slower than warm, more than these few products cost (README, hybrid)."""
    cosines = [sum(map(mul, row, target)) for row in rows]
    position = max(range(len(cosines)), key=cosines.__getitem__)
    return position, cosines[position]


def images_hit(point: StoredPoint, target: Sequence[float], vector_name: str | None) -> IndexHit:
    """A hit of the images leg (asked for with its multivector): scored by, and naming, its closest image."""
    rows = cast(dict[str, Any], point.vector or {}).get(IMAGES_VECTOR)
    hit = point_hit(point, 0.0, vector_name)
    if not rows:  # written between the legs with one image: the main leg scores it
        return replace(hit, score=-2.0)
    hit.image_position, hit.score = closest_image(rows, target)
    return hit


def closest_by_product(main: Sequence[IndexHit], images: Sequence[IndexHit]) -> dict[str, IndexHit]:
    """Both legs' hits keyed by product id (one tenant's: unique), each product under its better score."""
    best: dict[str, IndexHit] = {}
    for hit in (*main, *images):
        held = best.get(hit.product_id)
        if held is None or hit.score > held.score:
            best[hit.product_id] = hit
    return best


def by_closest_image(main: Sequence[IndexHit], images: Sequence[IndexHit], limit: int) -> list[IndexHit]:
    """Both legs merged: each product once, under its better score (its closest image), best first."""
    return _best_first(closest_by_product(main, images), limit)


def _best_first(hits: dict[str, IndexHit], limit: int) -> list[IndexHit]:
    return sorted(hits.values(), key=lambda hit: -hit.score)[:limit]


def image_named(payload: dict[str, Any], row: int) -> dict[str, Any]:
    """Row `row` of a point's images as {"url", "position"} (the payload of `NAMED_IMAGES_PAYLOAD`)."""
    gallery = payload.get("gallery")
    if gallery and 0 <= row < len(gallery):
        return {"url": gallery[row].get("url"), "position": gallery[row].get("position", row)}
    return {"url": (payload.get("metadata") or {}).get("image_url"), "position": 0}


def image_rows(images: np.ndarray | None, vector: np.ndarray) -> list[np.ndarray]:
    """A point's vectors, one per image, main first."""
    return [vector] if images is None else list(images)


def hybrid_hits(query: HybridQuery, vector_name: str, target: Sequence[float], tokens: Sequence[int],
                main_leg: Sequence[ScoredStoredPoint], images_leg: Sequence[ScoredStoredPoint],
                by_words: Sequence[ScoredStoredPoint], exact: Sequence[ScoredStoredPoint]) -> HybridHits:
    """Both engines' hybrid answer from the legs of their one batched call: each product once, scored by its closest
    image; a product found by its words alone is scored by its closest image too, from the vectors the words leg
    brought back (its main vector and its images: no second search by id). `target`: the query as sent
    (`base.unit_floats`)."""
    keep = vector_name if query.with_vectors else None
    by_picture = closest_by_product([point_hit(p, p.score, keep) for p in main_leg],
                                    [images_hit(p, target, keep) for p in images_leg])
    # Payload and vectors read once each: every read of an engine's point converts all of it again.
    read = [(point, point_payload(point), cast(dict[str, Any], point.vector)) for point in by_words]
    words = []
    for point, payload, vectors in read:
        seen = by_picture.get(payload["product_id"])
        position, cosine = (seen.image_position, seen.score) if seen is not None else \
            _closest_image_sent_back(vectors, vector_name, target)
        words.append(_words_hit(point, payload, vectors, position, cosine, keep, tokens))
    return HybridHits(_best_first(by_picture, query.limit), words, [point_hit(p, p.score, keep) for p in exact])


def _words_hit(point: ScoredStoredPoint, payload: dict[str, Any], vectors: dict[str, Any], position: int,
               cosine: float, keep: str | None, tokens: Sequence[int]) -> IndexHit:
    """A hit of the lexical leg (asked for with its words vector): its BM25 score and the share of the query's tokens
    it holds; `score` is the cosine of its closest image."""
    held = set(vectors[WORDS_VECTOR].indices)
    coverage = sum(token in held for token in tokens) / len(tokens) if tokens else 0.0
    vector = None if keep is None else np.asarray(vectors[keep], dtype=np.float32)
    return IndexHit(payload["product_id"], cosine, payload, vector, words_score=point.score, words_coverage=coverage,
                    image_position=position)


def _closest_image_sent_back(vectors: dict[str, Any], vector_name: str, target: Sequence[float]) -> tuple[int, float]:
    """The closest image (position, cosine) of a point sent back with its main vector and images: the engines' own
    score, computed here instead of a second search by id."""
    rows = vectors.get(IMAGES_VECTOR)  # main first: a product of one image has none
    return closest_image(rows or [vectors[vector_name]], target)
