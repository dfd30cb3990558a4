"""Shopper feedback at the edge: what a storefront sends about a search result."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    search_id: str = Field(min_length=1, max_length=40)
    product_id: str = Field(min_length=1, max_length=256)
    event: Literal["click", "add_to_cart", "purchase"]
    position: int = Field(ge=0, le=1000, description="0-based rank of the product in the results")


MAX_EVENTS_PER_CALL = 1000
EventType = Literal["click", "add_to_cart", "purchase"]


class EventIn(BaseModel):
    """One shopper action on a search result, as POST /v1/events takes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: EventType
    search_id: str = Field(min_length=1, max_length=40, description="the search_id the search answered")
    product_id: str = Field(min_length=1, max_length=256)
    position: int = Field(ge=0, le=1000, description="0-based rank of the product in the results")
    event_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$",
                                 description="the sender's id: sent again, the event is acknowledged, not counted")
    value: float | None = Field(None, ge=0, le=1e9, description="amount of a purchase or add-to-cart")
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="ISO 4217, with value")
    user_token: str | None = Field(None, min_length=1, max_length=64, description="a pseudonymous shopper id")


class EventsIn(BaseModel):
    """Up to MAX_EVENTS_PER_CALL events; each is checked on its own, so one bad event never costs the others."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(min_length=1, description=f"at most {MAX_EVENTS_PER_CALL}")


class EventRejection(BaseModel):
    index: int = Field(description="0-based index of the event in the request")
    code: str
    message: str


class EventsReport(BaseModel):
    accepted: int = Field(description="events stored now")
    duplicates: int = Field(description="events already stored (same event_id, or the same action on the same result)")
    rejected: list[EventRejection]
