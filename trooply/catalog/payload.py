"""What the index stores beside each vector: filterable fields, display metadata, image signals."""

from typing import Any

from trooply.catalog.gallery import GALLERY_KEY
from trooply.catalog.models import ProductRecord
from trooply.index.filters import filterable_payload


def index_payload(record: ProductRecord, image_signals: dict[str, Any] | None = None,
                  gallery: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Image signals left out keep their stored values when this is applied as a payload update. `gallery`: every
    image of a product of several (see `catalog.gallery`)."""
    payload = {"product_id": record.id, **filterable_payload(record.meta),
               "metadata": {"image_url": record.image_url, **record.meta}}
    if image_signals is not None:
        payload["image"] = image_signals
    if gallery is not None:
        payload[GALLERY_KEY] = gallery
    if record.family is not None:
        payload["family"], payload["family_confidence"] = record.family, record.family_confidence
    if record.popularity is not None:
        payload["popularity"] = record.popularity
    return payload
