"""Product input as merchants send it, validated with errors that name the product and the field."""

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trooply.errors import InvalidRequest
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

    @field_validator("attributes")
    @classmethod
    def _attribute_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for key, item in (value or {}).items():
            if not key or len(key) > 64 or "." in key:
                raise ValueError(f"attribute name {key!r} must be 1-64 characters without dots")
            if isinstance(item, str) and len(item) > 500:
                raise ValueError(f"attribute {key!r} is longer than 500 characters")
        return value


class ProductIn(ProductFields):
    id: str = Field(min_length=1, max_length=256)
    image_url: str = Field(min_length=1, max_length=2048)

    _image_url_is_http = field_validator("image_url")(_check_http_url)
    _id_is_addressable = field_validator("id", mode="before")(_check_product_id)

    def metadata(self) -> dict[str, Any]:
        """Everything but the id, as stored and returned with search results."""
        return self.model_dump(exclude={"id"}, exclude_none=True)


class ProductPatch(ProductFields):
    image_url: str | None = None


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    ids: list[str] | None = Field(None, min_length=1, max_length=MAX_BATCH,
                                  description="failed products to queue again; every failed product when left out")


class ImportOptions(BaseModel):
    """The form fields beside an uploaded import file."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["csv", "jsonl"] | None = Field(None, description="csv or jsonl; from the file name when unset")
    skip_unchanged: bool = Field(True, description="leave products stored exactly as in the file alone (a re-run "
                                 "resumes); false sends every row again")


def parse_product_batch(body: Any) -> list[ProductIn]:
    """One product or {"products": [...]}; every invalid product is reported, none is accepted."""
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
    products: list[ProductIn] = []
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}  # product id -> its index
    for index, item in enumerate(items):
        try:
            product = ProductIn.model_validate(item)
        except ValidationError as error:
            problems.extend(_describe(index, item, error))
            continue
        if product.id in seen:
            problems.append({"index": index, "product_id": product.id, "field": "id",
                             "message": f"duplicate of the product at index {seen[product.id]}"})
        seen[product.id] = index
        products.append(product)
    if problems:
        first = problems[0]
        raise InvalidRequest(
            f"{len(problems)} invalid field(s); first: product {first['product_id']!r} (index "
            f"{first['index']}) {first['field']}: {first['message']}",
            code="validation_error", details=problems)
    return products


def _describe(index: int, item: Any, error: ValidationError) -> list[dict[str, Any]]:
    product_id = item.get("id") if isinstance(item, dict) else None
    return [{"index": index, "product_id": product_id,
             "field": ".".join(str(part) for part in problem["loc"]) or "product",
             "message": problem["msg"]} for problem in error.errors()]
