"""Query options shared by every search mode, and the result envelope."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MIN_MULTI_IMAGES, MAX_MULTI_IMAGES = 2, 5


class SearchOptions(BaseModel):
    # Strict for JSON bodies ("10" is not a limit); multipart form fields are text and are validated lax.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    limit: int = Field(10, ge=1, le=100)
    threshold: float = Field(0.0, ge=0.0, le=1.0)
    filters: dict[str, Any] | None = None
    profile: str | None = Field(None, description="a scoring profile (profiles/*.yaml); auto-selected when unset")
    explain: bool = True


class TextSearchRequest(SearchOptions):
    query: str = Field(min_length=1, max_length=500)


class ImageQuery(SearchOptions):
    """Modes that take one image: `image_url` here, or an uploaded `file` beside these fields."""

    image_url: str | None = Field(None, min_length=1, max_length=2048)


class DetectingImageQuery(ImageQuery):
    """URL and upload search can first detect the most prominent item and search on it alone."""

    detect: bool = False
    detect_class: int | None = Field(None, ge=0, le=9, description="only items of this class id")


class UrlSearchRequest(DetectingImageQuery):
    image_url: str = Field(min_length=1, max_length=2048)


class CropSearchRequest(ImageQuery):
    bbox: list[float] = Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] in pixels of the image")


class FusionSearchRequest(ImageQuery):
    text: str = Field(min_length=1, max_length=500)
    image_weight: float = Field(0.5, ge=0.0, le=1.0)


class MultiSearchRequest(SearchOptions):
    image_urls: list[str] | None = None


class MatchBreakdown(BaseModel):
    signals: dict[str, float]
    weights: dict[str, float]
    gates: list[str] = Field(default_factory=list, description=(
        "the category gate's outcome: category:passed, category:inactive (the query's type was unsure) "
        "or category:near_duplicate (another type, kept as a near-copy of the query)"))


class SearchHit(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    similarity_score: float
    metadata: dict[str, Any]
    match_breakdown: MatchBreakdown | None = Field(None, alias="_match_breakdown")
    explanation: str | None = None


class DetectionOut(BaseModel):
    """The detected item a search ran on."""

    class_id: int
    class_name: str
    score: float
    bounding_box: list[float]

    @classmethod
    def of(cls, detection) -> "DetectionOut":
        return cls(class_id=detection.class_id, class_name=detection.class_name, score=detection.score,
                   bounding_box=[round(v, 1) for v in detection.box])


class QueryTimingsOut(BaseModel):
    """Inside took_ms: time in the CLIP encoder and in speech recognition; the rest is retrieval and ours."""

    model_ms: float = 0.0
    transcribe_ms: float = 0.0


class SearchEnvelope(BaseModel):
    search_id: str
    mode: str
    transcript: str | None = Field(None, description="voice mode only: what was heard")
    profile: str | None
    profile_confidence: float | None = Field(None, description="1.0 when the request named the profile")
    took_ms: float
    timings: QueryTimingsOut | None = None
    gated: list[str] | None = Field(None, description="with explain: candidates dropped by a hard gate")
    detection: DetectionOut | None = Field(None, description="with detect: the item the search ran on")
    results: list[SearchHit]
