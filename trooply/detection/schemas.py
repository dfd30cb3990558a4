"""What /v1/detect and /v1/embed take beside the query image. The image fields (`image_url`, or an uploaded
`file`) come from the search domain's ImageQuery, which sits above this one: the API joins the two."""

from typing import Annotated

from pydantic import BaseModel, Field

MAX_ITEMS = 50

BoundingBox = Annotated[list[float], Field(min_length=4, max_length=4)]
ItemText = Annotated[str, Field(min_length=1, max_length=500)]


class DetectOptions(BaseModel):
    top_k: int = Field(ge=1, le=MAX_ITEMS)
    classes: list[int] | None = Field(None, min_length=1, max_length=10)
    return_image: bool = False


class EmbedOptions(BaseModel):
    bounding_boxes: list[BoundingBox] | None = Field(None, min_length=1, max_length=MAX_ITEMS)
    top_k: int | None = Field(None, ge=1, le=MAX_ITEMS)
    text: str | Annotated[list[ItemText], Field(min_length=1, max_length=20)] | None = None
    with_tag: bool = False
    with_embedding: bool = True
