"""The query of each search mode, built from what the shopper sent: its vector, its look, its pre-filter, and
what is known of its family before classifying."""

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from trooply.catalog.repository import CatalogRepository
from trooply.db import Database
from trooply.errors import Conflict, InvalidRequest, NotFound, TrooplyError
from trooply.index.filters import parse_filters
from trooply.index.words import DEFAULT_LANGUAGE, Lexicon, lexicon
from trooply.observability import INDEX_QUERY_SECONDS, timed
from trooply.ranking.engine import NEAR_DUPLICATE_COSINE
from trooply.ranking.families import FamilyGuess
from trooply.search.context import SearchContext
from trooply.search.encoders import QueryEncoders
from trooply.search.phrases import QueryReader, QueryReading
from trooply.search.prepared_query import PreparedQuery, QueryLook, fused_look, unit
from trooply.search.schemas import MAX_MULTI_IMAGES, MIN_MULTI_IMAGES, InterpretedOut
from trooply.spaces.live import LiveSpaces
from trooply.vision.decode import crop_image
from trooply.vision.detection import Detection
from trooply.vision.query_image import QueryImage


class QueryBuilder:
    def __init__(self, encoders: QueryEncoders, reader: QueryReader, spaces: LiveSpaces,
                 db: Database, languages: Callable[[str], str] = lambda _tenant_id: DEFAULT_LANGUAGE) -> None:
        self.encoders = encoders
        self.languages = languages  # each tenant's: a query's words are tokenised as its products' were
        self.reader = reader
        self.spaces = spaces
        self.db = db

    def text_query(self, context: SearchContext, mode: str, said: str) -> PreparedQuery:
        """A text or transcript, read for constraints; CLIP encodes what remains (all of it if nothing does).
        What was read is added to the request's own filters."""
        reading = self.reader.read(said) if context.interpret else None
        applied = _applied(context, reading.filters if reading else {})
        conditions = context.conditions + parse_filters(applied or None)
        text = (reading.text if reading else "") or said
        vector = self.encoders.text(context, text)
        interpreted = InterpretedOut(text=text, filters=applied, colours=reading.colours,
                                     profile=reading.profile) if reading else None
        return PreparedQuery(mode, vector, QueryLook.of_text(text), conditions, _named_family(reading),
                             interpreted=interpreted, words=self._lexicon(context).query(text),
                             keyword_weight=context.keyword_weight, text=said)

    def _lexicon(self, context: SearchContext) -> Lexicon:
        return lexicon(self.languages(context.tenant_id))

    def similar(self, context: SearchContext, product_id: str) -> PreparedQuery:
        """More like a catalogue product: its stored vectors (every image), colour and shape; no fetch, no encode."""
        stored = self.spaces.retrieve(context.tenant_id, [product_id])
        if not stored:
            raise self._not_searchable(context.tenant_id, product_id)
        product = stored[0]
        family = product.payload.get("family")
        known = FamilyGuess(family, product.payload.get("family_confidence", 1.0), "product") if family else None
        others = tuple(product.images[1:]) if product.images is not None else ()
        return PreparedQuery("similar", product.vector, QueryLook.of_stored_product(product.payload),
                             context.conditions, known, exclude=product_id, more_vectors=others)

    def image(self, context: SearchContext, image: QueryImage, detect: bool,
              detect_class: int | None) -> tuple[PreparedQuery, Detection | None]:
        """With `detect`, a street photo is searched on its most prominent item (returned), not the scene."""
        decoded, used = self.encoders.images.decode(image), None
        picture = decoded.image
        if detect:
            used = self.encoders.items.most_prominent(context.tenant_id, decoded, detect_class)
            if used is not None:
                picture = decoded.crop(used.box)
        vector = self.encoders.image_vector(context, picture)
        mode = "url" if image.url else "image"
        return PreparedQuery(mode, vector, QueryLook.of_images([picture]), context.conditions), used

    def crop(self, context: SearchContext, image: QueryImage, bbox: Sequence[float]) -> PreparedQuery:
        picture = crop_image(self.encoders.images.decode(image), bbox)
        vector = self.encoders.image_vector(context, picture)
        return PreparedQuery("crop", vector, QueryLook.of_images([picture]), context.conditions)

    def multi(self, context: SearchContext, images: Sequence[QueryImage]) -> PreparedQuery:
        """The normalised centroid of 2 to 5 pictures."""
        if not MIN_MULTI_IMAGES <= len(images) <= MAX_MULTI_IMAGES:
            raise InvalidRequest(f"multi-image search takes {MIN_MULTI_IMAGES} to {MAX_MULTI_IMAGES} images, "
                                 f"got {len(images)}", code="wrong_image_count")
        pictures = []
        for position, image in enumerate(images):
            try:
                pictures.append(self.encoders.images.load(image))
            except TrooplyError as error:
                raise error.for_item(f"image {position}", position) from error
        vector = unit(self.encoders.image_vectors(context, pictures).mean(axis=0))
        return PreparedQuery("multi", vector, QueryLook.of_images(pictures), context.conditions)

    def fusion(self, context: SearchContext, image: QueryImage, text: str, image_weight: float) -> PreparedQuery:
        """Picture and words interpolated and re-normalised; "like this, but cheaper" reads a price bound."""
        reading = self.reader.read(text) if context.interpret else None
        words = reading.text if reading else text
        picture = self.encoders.images.load(image)
        image_vector = self.encoders.image_vector(context, picture)
        read, reference = self._with_relative_price(context, reading, image_vector)
        applied = _applied(context, read)
        if words:
            vector = unit(image_weight * image_vector + (1.0 - image_weight) * self.encoders.text(context, words))
        else:  # the text held only constraints ("like this, but cheaper"): the image is the whole query
            vector = image_vector
        # The profile follows whichever part leads the vector: a family word only when the text does.
        family = _named_family(reading) if image_weight < 0.5 else None
        interpreted = None
        if reading is not None:
            interpreted = InterpretedOut(text=words, filters=applied, colours=reading.colours, profile=reading.profile,
                                         cheaper_than=reference)
        return PreparedQuery("fusion", vector, fused_look(picture, words, image_weight),
                             context.conditions + parse_filters(applied or None), family, interpreted=interpreted,
                             words=self._lexicon(context).query(words) if words else None,
                             keyword_weight=context.keyword_weight,
                             text=text, text_share=1.0 - image_weight)

    def _with_relative_price(self, context: SearchContext, reading: QueryReading | None,
                             image_vector: np.ndarray) -> tuple[dict[str, Any], str | None]:
        """The filters read, plus for "like this, but cheaper" a price below that of the catalogue product the
        image is a near-duplicate of, and that product's id."""
        read = dict(reading.filters) if reading else {}
        if reading is None or not reading.cheaper or "price" in read or "price" in (context.options.filters or {}):
            return read, None
        with timed(INDEX_QUERY_SECONDS):
            closest = self.spaces.query(context.tenant_id, image_vector, 1)
        if not closest or closest[0].score < NEAR_DUPLICATE_COSINE or closest[0].payload.get("price") is None:
            return read, None
        read["price"] = {"lt": float(closest[0].payload["price"])}
        return read, closest[0].product_id

    def _not_searchable(self, tenant_id: str, product_id: str) -> TrooplyError:
        with self.db.session() as session:
            record = CatalogRepository(session, tenant_id).get_product(product_id)
        if record is None:
            return NotFound(f"no product {product_id!r}", code="product_not_found")
        why = f" (its image failed: {record.error_code})" if record.error_code else ""
        return Conflict(f"product {product_id!r} is not indexed yet{why}; search for it once it is",
                        code="product_not_indexed", details={"status": record.status})


def _applied(context: SearchContext, read: dict[str, Any]) -> dict[str, Any]:
    """The filters read from the words that the request's own filters leave standing (theirs win per field)."""
    return {field: spec for field, spec in read.items() if field not in (context.options.filters or {})}


def _named_family(reading: QueryReading | None) -> FamilyGuess | None:
    # The shopper typed the kind of product ("sneakers"): as sure as a family gets.
    return FamilyGuess(reading.profile, 1.0, "query") if reading is not None and reading.profile else None
