from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from trooply.db import Base, utcnow

PENDING, RUNNING, COMPLETED, FAILED = "pending", "running", "completed", "failed"
UNFINISHED = (PENDING, RUNNING)


class DuplicateScan(Base):
    """A background search of a tenant's catalogue for near-duplicate groups, and its result."""

    __tablename__ = "duplicate_scans"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    threshold: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    products_scanned: Mapped[int] = mapped_column(default=0)
    # The groups in the API's shape, largest first (DuplicateGroup.as_dict); set when completed.
    groups: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
