"""Query options shared by every search mode, and the result envelope."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# The ten scoring families; the ranking engine gives each its weights.
PROFILES = ("apparel", "footwear", "accessories", "electronics", "displays", "audio", "optics", "home",
            "media", "beauty")
ProfileName = str


class SearchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(10, ge=1, le=100)
    threshold: float = Field(0.0, ge=0.0, le=1.0)
    filters: dict[str, Any] | None = None
    profile: str | None = Field(None, json_schema_extra={"enum": list(PROFILES)})
    explain: bool = True


class TextSearchRequest(SearchOptions):
    query: str = Field(min_length=1, max_length=500)


class UrlSearchRequest(SearchOptions):
    image_url: str = Field(min_length=1, max_length=2048)


class MatchBreakdown(BaseModel):
    signals: dict[str, float]
    weights: dict[str, float]
    gates: list[str] = []


class SearchHit(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    similarity_score: float
    metadata: dict[str, Any]
    match_breakdown: MatchBreakdown | None = Field(None, alias="_match_breakdown")
    explanation: str | None = None


class SearchEnvelope(BaseModel):
    search_id: str
    mode: str
    profile: str | None
    took_ms: float
    results: list[SearchHit]
