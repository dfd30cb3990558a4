from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from trooply.db import Base, utcnow

PENDING, INDEXED, FAILED = "pending", "indexed", "failed"
PRODUCT_STATUSES = (PENDING, INDEXED, FAILED)


class ProductRecord(Base):
    __tablename__ = "products"
    __table_args__ = (Index("ix_products_tenant_status", "tenant_id", "status"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    image_url: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    content_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # Extra images that could not be indexed ([{"url", "code"}]); the product is indexed without them.
    image_errors: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, default=None)
    # The smoothed, decayed popularity signal last written to the index (None: no feedback yet).
    popularity: Mapped[float | None] = mapped_column(Float, default=None)
    # The product family (scoring profile) from its category or zero-shot at ingest, and how sure.
    family: Mapped[str | None] = mapped_column(String(40), default=None)
    family_confidence: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    indexed_at: Mapped[datetime | None] = mapped_column(default=None)


class IngestJob(Base):
    __tablename__ = "ingest_jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    total: Mapped[int]
    # Stored vectors of unchanged image URLs are kept, not fetched again (PATCH, feed syncs); otherwise the main
    # image is fetched again to notice a new picture behind the same URL.
    keep_images: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IngestItem(Base):
    """One product of one job: the unit of work the queue carries."""

    __tablename__ = "ingest_items"
    __table_args__ = (Index("ix_ingest_items_status", "status"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("ingest_jobs.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def product_images(record: ProductRecord) -> list[str]:
    """Every image URL of the product, the main image first."""
    images = record.meta.get("images")
    return list(images) if images else [record.image_url]
