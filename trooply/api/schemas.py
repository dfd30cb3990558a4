"""Response shapes of the catalog endpoints (search shapes live in trooply.search.schemas)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from trooply.catalog.models import ProductRecord


class ErrorInfo(BaseModel):
    code: str
    message: str


class ProductAdmissionOut(BaseModel):
    id: str
    status: str
    error: ErrorInfo | None = None


class SubmissionOut(BaseModel):
    job_id: str
    accepted: int
    rejected: int
    products: list[ProductAdmissionOut]


class ProductOut(BaseModel):
    id: str
    status: str
    image_url: str
    metadata: dict[str, Any]
    error: ErrorInfo | None = None
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None

    @classmethod
    def of(cls, record: ProductRecord) -> "ProductOut":
        error = ErrorInfo(code=record.error_code, message=record.error_message or "") if record.error_code else None
        return cls(id=record.id, status=record.status, image_url=record.image_url, metadata=record.meta,
                   error=error, created_at=record.created_at, updated_at=record.updated_at,
                   indexed_at=record.indexed_at)


class ProductPage(BaseModel):
    products: list[ProductOut]
    next_after: str | None


class JobError(BaseModel):
    product_id: str
    code: str | None
    message: str | None


class JobOut(BaseModel):
    job_id: str
    status: str
    total: int
    counts: dict[str, int]
    errors: list[JobError]
    created_at: datetime
