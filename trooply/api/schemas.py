"""Response shapes of the catalog endpoints (search shapes live in trooply.search.schemas)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from trooply.catalog.models import ProductRecord


class ErrorInfo(BaseModel):
    code: str
    message: str


class ProductAdmissionOut(BaseModel):
    id: str
    status: str
    error: ErrorInfo | None = None


class SubmissionOut(BaseModel):
    job_id: str | None = Field(description="null when nothing was queued (every product unchanged)")
    accepted: int
    rejected: int
    unchanged: int = Field(0, description="with skip_unchanged: products stored as sent, not queued")
    products: list[ProductAdmissionOut]


class ProductOut(BaseModel):
    id: str
    status: str
    image_url: str
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
        return cls(id=record.id, status=record.status, image_url=record.image_url, metadata=record.meta,
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
    name: str
    hex: str
    overlap: float = Field(description="histogram intersection with the colour word's own histogram")


class ImageSignalsOut(BaseModel):
    width: int | None
    height: int | None
    aspect_ratio: float | None
    colour_histogram: list[float] = Field(description="64-bin CIE-Lab histogram (4 x 4 x 4), object-weighted")
    colour_swatch: list[ColourWord] = Field(description="the colour words the histogram reads as, closest first")


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
