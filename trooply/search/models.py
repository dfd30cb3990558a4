from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from trooply.db import Base, utcnow


class SearchLog(Base):
    """What a search returned, for feedback and popularity: never the query itself."""

    __tablename__ = "search_logs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    mode: Mapped[str] = mapped_column(String(20))
    profile: Mapped[str | None] = mapped_column(String(40), default=None)
    product_ids: Mapped[list[str]] = mapped_column(JSON)
    took_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
