"""Query options shared by every search mode, and the result envelope."""

from typing import Any, Literal

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
    group_by: str | None = Field(None, min_length=1, max_length=80, description=(
        "a filterable field (brand, attributes.group_id, …): at most group_size results per value, the best kept"))
    group_size: int = Field(1, ge=1, le=100)
    diversity: float = Field(0.0, ge=0.0, le=1.0, description=(
        "0 (off) to 1: trade relevance for variety among the results (maximal marginal relevance)"))


KEYWORD_WEIGHT_DESCRIPTION = ("0 (pictures only) to 1 (words only): how much the product's words (title, brand, "
                              "category, description, attributes, identifiers) count against its picture; the "
                              "profile's keyword_weight when unset")


class ReadableQuery(SearchOptions):
    """Modes with words in them: price, stock, colour and family phrases are read unless `interpret` is false."""

    interpret: bool = Field(True, description="read price, stock, colour and family phrases from the text")
    keyword_weight: float | None = Field(None, ge=0.0, le=1.0, description=KEYWORD_WEIGHT_DESCRIPTION)


class TextSearchRequest(ReadableQuery):
    query: str = Field(min_length=1, max_length=500)


class VoiceSearchRequest(ReadableQuery):
    """The form fields beside the `audio` upload."""


class SimilarSearchRequest(SearchOptions):
    product_id: str = Field(min_length=1, max_length=256, description="a product of the catalogue: more like it")


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
    interpret: bool = Field(True, description="read price, stock, colour and family phrases from the text; "
                                              "\"cheaper\" means cheaper than a catalogue product the image is a "
                                              "near-duplicate of")
    image_weight: float = Field(0.5, ge=0.0, le=1.0)
    keyword_weight: float | None = Field(None, ge=0.0, le=1.0, description=KEYWORD_WEIGHT_DESCRIPTION)


class MultiSearchRequest(SearchOptions):
    image_urls: list[str] | None = None


class MatchBreakdown(BaseModel):
    signals: dict[str, float]
    weights: dict[str, float]
    gates: list[str] = Field(default_factory=list, description=(
        "the category gate's outcome: category:passed, category:inactive (the query's type was unsure), "
        "category:near_duplicate (another type, kept as a near-copy of the query), category:relaxed "
        "(another type, shown because the gate would have emptied the page) or category:exact_identifier (the query "
        "is exactly its id or product code)"))
    matched_terms: list[str] | None = Field(None, exclude_if=lambda terms: terms is None, description=(
        "text, voice and fusion queries weighing words: the query's words found in this product, as typed"))


class MatchedImage(BaseModel):
    url: str | None = Field(description="the product's image the query matched best")
    position: int = Field(description="its place in the product's images (0: the main image)")


class SearchHit(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    similarity_score: float
    metadata: dict[str, Any]
    matched_image: MatchedImage | None = Field(None, description=(
        "which of the product's images scored it (its closest to the query); colour and aspect signals are that "
        "image's"))
    match_breakdown: MatchBreakdown | None = Field(None, alias="_match_breakdown")
    explanation: str | None = None
    group: Any = Field(None, description="with group_by: this result's value of that field (null: it has none)")


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


class InterpretedOut(BaseModel):
    """What the query reader understood and applied."""

    text: str = Field(description="what CLIP encoded")
    filters: dict[str, Any] = Field(description="filters read from the words (the request's own win on conflict)")
    colours: list[str]
    profile: str | None = Field(None, description="the family a word named (used unless the request names one)")
    cheaper_than: str | None = Field(None, description="fusion: the catalogue product the image is a "
                                                       "near-duplicate of, whose price results stay below")


class SearchEnvelope(BaseModel):
    search_id: str
    mode: str
    transcript: str | None = Field(None, description="voice mode only: what was heard")
    profile: str | None
    profile_confidence: float | None = Field(None, description="1.0 when the request or a word of the query "
                                             "named the profile")
    profile_source: Literal["request", "query", "product", "model"] | None = Field(
        None, description="how the profile was chosen: named in the request, named by a word of the query, the "
        "family stored with the product (similar), or the zero-shot classifier on the query (model)")
    took_ms: float
    timings: QueryTimingsOut | None = None
    gated: list[str] | None = Field(None, description="with explain: candidates dropped by a hard gate")
    gates_relaxed: bool = Field(False, description="the gate would have dropped every candidate, so the best of "
                                                   "them are shown, marked category:relaxed")
    detection: DetectionOut | None = Field(None, description="with detect: the item the search ran on")
    interpreted: InterpretedOut | None = Field(None, description="text modes: what the query reader understood")
    group_by: str | None = None
    keyword_weight: float | None = Field(None, description=(
        "text, voice and fusion: the share of words against pictures this search used (0 = pictures only)"))
    keywords_fallback: str | None = Field(None, description=(
        "why the words were not used: no_searchable_words (only stop words or punctuation), so pictures only"))
    results: list[SearchHit]
