"""A query on its way to retrieval: its look (colour and shape) and what is known of it beside its vector."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from trooply.errors import InvalidRequest
from trooply.index.base import Condition
from trooply.index.words import QueryWords
from trooply.ranking.families import FamilyGuess
from trooply.search.schemas import InterpretedOut
from trooply.vision.colour import ColourTarget, colour_palette, mix_palettes, stored_palette, text_target


@dataclass(frozen=True)
class QueryLook:
    """The query's colour and shape, for the colour and aspect signals (None: nothing to compare)."""

    colour: ColourTarget | None = None
    aspect_ratio: float | None = None

    @classmethod
    def of_text(cls, text: str) -> "QueryLook":
        return cls(text_target(text))

    @classmethod
    def of_images(cls, pictures: Sequence[Image.Image]) -> "QueryLook":
        palette = mix_palettes([colour_palette(p) for p in pictures])
        log_ratio = float(np.mean([np.log(p.width / p.height) for p in pictures]))
        return cls(ColourTarget(palette=palette), round(float(np.exp(log_ratio)), 4))

    @classmethod
    def of_stored_product(cls, payload: dict[str, Any]) -> "QueryLook":
        """A catalogue product's look, from the signals stored with it at ingest (no colour before palettes)."""
        image = payload.get("image") or {}
        palette = stored_palette(image)
        return cls(ColourTarget(palette=palette) if palette else None, image.get("aspect_ratio"))


@dataclass
class PreparedQuery:
    """A query ready for retrieval: its vector, its look, its pre-filter and what is known of its family."""

    mode: str
    vector: np.ndarray
    look: QueryLook
    conditions: list[Condition]
    family: FamilyGuess | None = None  # known without classifying: a family word, a product's own family
    exclude: str | None = None  # similar: the product itself
    interpreted: InterpretedOut | None = None
    words: QueryWords | None = None  # text, voice and fusion: what the lexical leg looks for
    keyword_weight: float | None = None  # the request's share of words (None: the profile's, times `text_share`)
    text_share: float = 1.0  # fusion: how much of the query the text is (1 - image_weight)
    text: str | None = None  # what the shopper typed or said, for analytics (never an image)
    # similar: the product's other images; a candidate is scored by its best match to any of them
    more_vectors: tuple[np.ndarray, ...] = ()


def fused_look(picture: Image.Image, text: str, image_weight: float) -> QueryLook:
    """Shape from the picture; colour from the text when it names one (the shopper said what they want)."""
    image_look = QueryLook.of_images([picture]) if image_weight > 0 else QueryLook()
    text_look = QueryLook.of_text(text) if image_weight < 1 else QueryLook()
    colour = text_look.colour if text_look.colour is not None else image_look.colour
    return QueryLook(colour, image_look.aspect_ratio)


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm < 1e-6:
        raise InvalidRequest("the image and text cancel each other out; change image_weight",
                             code="degenerate_query")
    return (vector / norm).astype(np.float32)
