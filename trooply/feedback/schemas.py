"""Shopper feedback at the edge: what a storefront sends about a search result."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    search_id: str = Field(min_length=1, max_length=40)
    product_id: str = Field(min_length=1, max_length=256)
    event: Literal["click", "add_to_cart", "purchase"]
    position: int = Field(ge=0, le=1000, description="0-based rank of the product in the results")
