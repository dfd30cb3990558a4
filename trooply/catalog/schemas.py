"""The catalog at the edge: product input as merchants send it, validated with errors that name the product and
the field, and what the catalog endpoints answer."""

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trooply.catalog.models import ProductRecord, product_images
from trooply.errors import InvalidRequest
from trooply.index.filters import attribute_name_problem
from trooply.vision.fetch import image_url_problem

MAX_BATCH = 1000
AttributeValue = str | bool | int | float
# An id is one URL path segment in GET/PATCH/DELETE /v1/products/{id}: characters that a client or a
# proxy would read as structure (a slash, even encoded, is routed as a separator) could never be addressed.
_UNADDRESSABLE = re.compile(r"[/\\?#\x00-\x1f\x7f]")


def _check_http_url(value: str | None) -> str | None:
    if value is not None and (problem := image_url_problem(value)) is not None:
        raise ValueError(problem)
    return value


def _check_product_id(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # the type check reports it
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    if value in (".", "..") or _UNADDRESSABLE.search(value):
        raise ValueError("must not be '.' or '..' nor contain '/', '\\', '?', '#' or control characters: "
                         "an id is addressed as one URL path segment")
    return value


def _refuse_nul(value: Any) -> Any:
    # Every way in (JSON, CSV, feeds) meets this: PostgreSQL's text refuses NUL, and one would fail a whole batch.
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class ProductFields(BaseModel):
    """The metadata fields, shared by create and patch."""

    # Strict: a JSON body says "price": 12 and "in_stock": true, not "12" and "yes".
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True, allow_inf_nan=False)

    title: str | None = Field(None, max_length=1000)
    description: str | None = Field(None, max_length=10_000)
    category: str | None = Field(None, min_length=1, max_length=200)
    brand: str | None = Field(None, min_length=1, max_length=200)
    price: float | None = Field(None, ge=0, le=1e12)
    currency: str | None = Field(None, min_length=3, max_length=3)
    in_stock: bool | None = None
    url: str | None = Field(None, max_length=2048)
    attributes: dict[str, AttributeValue] | None = Field(None, max_length=50)
    popularity: float | None = Field(None, ge=0)

    _url_is_http = field_validator("url")(_check_http_url)
    _text_has_no_nul = field_validator("title", "description", "category", "brand", "currency", "url")(_refuse_nul)

    @field_validator("attributes")
    @classmethod
    def _attribute_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for key, item in (value or {}).items():
            if (problem := attribute_name_problem(key)) is not None:
                raise ValueError(f"attribute name {key!r}: {problem}")
            if "\x00" in key or (isinstance(item, str) and "\x00" in item):
                raise ValueError(f"attribute {key!r} must not contain NUL characters")
            if isinstance(item, str) and len(item) > 500:
                raise ValueError(f"attribute {key!r} is longer than 500 characters")
        return value


ImageUrl = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(_refuse_nul),
                     AfterValidator(_check_http_url)]
# The schema's own ceiling; the plan's cap (TROOPLY_MAX_IMAGES_PER_PRODUCT at most) is checked on admission.
MAX_IMAGES = 100
TOO_MANY_IMAGES = "too_many_images"  # the code of a product over its plan's cap


class ProductIn(ProductFields):
    id: str = Field(min_length=1, max_length=256)
    image_url: ImageUrl = Field(description="the main image; the first of `images` when left out")
    images: list[ImageUrl] | None = Field(None, min_length=1, max_length=MAX_IMAGES, description=(
        "every image of the product (front, side, back, ...), the main image first; beside image_url (then first) "
        "or alone. Each is searchable; a hit says which image matched"))

    _id_is_addressable = field_validator("id", mode="before")(_check_product_id)

    @model_validator(mode="before")
    @classmethod
    def _main_image_of_the_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("image_url") is None and isinstance(data.get("images"), list):
            return {**data, "image_url": data["images"][0]} if data["images"] else data
        return data

    @model_validator(mode="after")
    def _main_image_first(self) -> "ProductIn":
        urls = list(dict.fromkeys([self.image_url, *(self.images or [])]))
        self.images = urls if len(urls) > 1 else None  # one image: stored as before, in image_url alone
        return self

    def metadata(self) -> dict[str, Any]:
        """Everything but the id, as stored and returned with search results."""
        return self.model_dump(exclude={"id"}, exclude_none=True)


class ProductBatchIn(BaseModel):
    """{"products": [...]}: how a batch is declared (POST /v1/products reads it product by product)."""

    model_config = ConfigDict(extra="forbid")

    products: list[ProductIn] = Field(min_length=1, max_length=MAX_BATCH)


class ProductPatch(ProductFields):
    image_url: str | None = None
    images: list[ImageUrl] | None = Field(None, min_length=1, max_length=MAX_IMAGES, description=(
        "a new image list, main first: only the URLs that changed are fetched and encoded"))


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    ids: list[str] | None = Field(None, min_length=1, max_length=MAX_BATCH,
                                  description="failed products to queue again; every failed product when left out")


class ImportOptions(BaseModel):
    """The form fields beside an uploaded import file."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["csv", "jsonl", "google_xml", "google_tsv", "shopify_csv", "auto"] | None = Field(
        None, description="csv, jsonl, google_xml, google_tsv, shopify_csv or auto (read from the file's start); "
        "from the file name when unset")
    skip_unchanged: bool = Field(True, description="leave products stored exactly as in the file alone (a re-run "
                                 "resumes); false sends every row again")


@dataclass
class InvalidProduct:
    """A product of the request that cannot be accepted: its place in the request, the first field at fault,
    and a message naming every problem."""

    index: int
    product_id: str | None
    code: str  # validation_error | duplicate_id
    field: str
    message: str


@dataclass
class ProductBatch:
    """A POST /v1/products body read product by product: the valid products (with their place in the request)
    and the invalid ones."""

    products: list[ProductIn] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    invalid: list[InvalidProduct] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)  # every field at fault, for a 422's details

    def refusal(self) -> InvalidRequest:
        """The whole request refused: no product of it is valid."""
        first = self.problems[0]
        return InvalidRequest(
            f"{len(self.problems)} invalid field(s); first: product {first['product_id']!r} (index "
            f"{first['index']}) {first['field']}: {first['message']}",
            code="validation_error", details=self.problems)


def read_product_batch(body: Any) -> ProductBatch:
    """One product or {"products": [...]}, each product checked on its own. A body of another shape is refused
    whole (InvalidRequest); invalid products are returned beside the valid ones."""
    if isinstance(body, dict) and "products" in body:
        if set(body) != {"products"}:
            raise InvalidRequest("a batch body holds only 'products'", code="validation_error")
        items = body["products"]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
            raise InvalidRequest(f"'products' must be a list of 1 to {MAX_BATCH} products",
                                 code="validation_error")
    elif isinstance(body, dict):
        items = [body]
    else:
        raise InvalidRequest("body must be a product object or {\"products\": [...]}", code="validation_error")
    batch = ProductBatch()
    seen: dict[str, int] = {}  # product id -> its index
    for index, item in enumerate(items):
        try:
            product = ProductIn.model_validate(item)
        except ValidationError as error:
            problems = _describe(index, item, error)
            batch.problems.extend(problems)
            batch.invalid.append(InvalidProduct(
                index, problems[0]["product_id"], "validation_error", problems[0]["field"],
                "; ".join(f"{p['field']}: {p['message']}" for p in problems)))
            continue
        if product.id in seen:
            message = f"duplicate of the product at index {seen[product.id]}"
            batch.problems.append({"index": index, "product_id": product.id, "field": "id", "code": "duplicate_id",
                                   "message": message})
            batch.invalid.append(InvalidProduct(index, product.id, "duplicate_id", "id", f"id: {message}"))
            continue
        seen[product.id] = index
        batch.products.append(product)
        batch.indexes.append(index)
    return batch


def parse_product_batch(body: Any) -> list[ProductIn]:
    """One product or {"products": [...]}, all valid: any invalid product refuses the whole body."""
    batch = read_product_batch(body)
    if batch.invalid:
        raise batch.refusal()
    return batch.products


def _describe(index: int, item: Any, error: ValidationError) -> list[dict[str, Any]]:
    product_id = item.get("id") if isinstance(item, dict) else None
    return [{"index": index, "product_id": product_id if isinstance(product_id, str) else None,
             "field": ".".join(str(part) for part in problem["loc"]) or "product",
             "code": "validation_error", "message": problem["msg"]} for problem in error.errors()]


class ErrorInfo(BaseModel):
    code: str
    message: str


class AdmissionErrorOut(ErrorInfo):
    field: str | None = Field(None, description="the first field at fault, for an invalid product")


class ProductAdmissionOut(BaseModel):
    id: str | None = Field(description="null only for an invalid product sent without a readable id")
    index: int = Field(description="the product's place in the request (0 for a single product)")
    status: str = Field(description="pending (queued), unchanged (with skip_unchanged) or rejected (see error)")
    error: AdmissionErrorOut | None = None


class SubmissionOut(BaseModel):
    job_id: str | None = Field(description="null when nothing was queued (every product unchanged or rejected)")
    accepted: int
    rejected: int = Field(description="invalid products (error code validation_error or duplicate_id) and those "
                          "over the plan's allowance (quota_exceeded); the valid ones are accepted")
    unchanged: int = Field(0, description="with skip_unchanged: products stored as sent, not queued")
    products: list[ProductAdmissionOut]


class ImageErrorOut(BaseModel):
    url: str
    code: str


class ProductOut(BaseModel):
    id: str
    status: str
    image_url: str
    images: list[str] = Field([], description="every image, the main image first")
    image_errors: list[ImageErrorOut] = Field([], description="extra images that could not be indexed; the product "
                                              "is searchable by its other images")
    metadata: dict[str, Any]
    error: ErrorInfo | None = None
    family: str | None = Field(None, description="the scoring profile the product belongs to")
    family_confidence: float | None = None
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None

    @classmethod
    def of(cls, record: ProductRecord) -> "ProductOut":
        error = ErrorInfo(code=record.error_code, message=record.error_message or "") if record.error_code else None
        return cls(id=record.id, status=record.status, image_url=record.image_url, images=product_images(record),
                   image_errors=[ImageErrorOut(**error) for error in record.image_errors or ()], metadata=record.meta,
                   error=error, family=record.family, family_confidence=record.family_confidence,
                   created_at=record.created_at, updated_at=record.updated_at, indexed_at=record.indexed_at)


class ProductPage(BaseModel):
    products: list[ProductOut]
    next_after: str | None


class JobError(BaseModel):
    product_id: str
    code: str | None
    message: str | None


class JobSummary(BaseModel):
    job_id: str
    status: str
    total: int
    counts: dict[str, int]
    created_at: datetime


class JobOut(JobSummary):
    errors: list[JobError]


class JobList(BaseModel):
    jobs: list[JobSummary]


class CategoryCount(BaseModel):
    category: str
    count: int


class CatalogStats(BaseModel):
    counts: dict[str, int] = Field(description="products by status: pending, indexed, failed")
    total: int
    allowance: int | None = Field(description="products the plan holds; null: unlimited")
    failures: dict[str, int] = Field(description="failed products by error code")
    categories: list[CategoryCount] = Field(description="the largest categories, by product count")


class SkippedRetry(BaseModel):
    id: str
    reason: str = Field(description="product_not_found or not_failed")


class RetryOut(BaseModel):
    job_id: str | None
    requeued: int
    skipped: list[SkippedRetry]


class ColourWord(BaseModel):
    name: str = Field(description="the name people give this colour: a basic colour or a shopper word (navy, beige)")
    family: str = Field(description="its basic colour family (navy: blue)")
    hex: str = Field(description="the product's own colour under that name")
    share: float = Field(description="share of the product this colour covers")
    overlap: float = Field(description="same as share (kept for older clients)")


class PaletteColourOut(BaseModel):
    lab: list[float] = Field(description="CIE Lab (D65)")
    share: float


class ImageSignalsOut(BaseModel):
    width: int | None
    height: int | None
    aspect_ratio: float | None
    colour_stale: bool = Field(False, description="stored before colour palettes: no names until recomputed")
    colour_histogram: list[float] = Field(description="64-bin CIE-Lab histogram (4 x 4 x 4) of the palette "
                                          "(kept for older clients)")
    colour_palette: list[PaletteColourOut] = Field([], description="dominant colours of the object, largest first")
    colour_swatch: list[ColourWord] = Field(description="its two or three main colours as people name them, "
                                            "with their shares")


class ProductSignalsOut(BaseModel):
    product_id: str
    status: str
    family: str | None
    family_confidence: float | None
    image: ImageSignalsOut | None = Field(description="null until the product is indexed")


class RejectedRowOut(BaseModel):
    line: int
    product_id: str | None
    code: str
    message: str
    field: str | None


class ImportOut(BaseModel):
    rows: int
    accepted: int
    unchanged: int
    jobs: list[str]
    rejected: list[RejectedRowOut]
