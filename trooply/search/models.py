from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from trooply.db import Base, utcnow


class SearchLog(Base):
    """What a search returned, for feedback, popularity and analytics: never a query image or audio; a text query
    (or transcript) only normalised, and only while TROOPLY_ANALYTICS_QUERY_TEXT is on."""

    __tablename__ = "search_logs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    mode: Mapped[str] = mapped_column(String(20))
    profile: Mapped[str | None] = mapped_column(String(40), default=None)
    product_ids: Mapped[list[str]] = mapped_column(JSON)
    took_ms: Mapped[float] = mapped_column(Float)
    query: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
