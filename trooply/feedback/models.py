from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from trooply.db import Base, utcnow


class FeedbackEvent(Base):
    """A shopper's action on a search result; one row per (search, product, event), so repeats are harmless."""

    __tablename__ = "feedback_events"
    __table_args__ = (UniqueConstraint("search_id", "product_id", "event", name="uq_feedback_once"),
                      # The sender's own id (POST /v1/events): an event sent again is acknowledged, not counted twice.
                      Index("uq_feedback_event_id", "tenant_id", "event_id", unique=True))

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    search_id: Mapped[str] = mapped_column(String(40))
    product_id: Mapped[str] = mapped_column(String(256))
    event: Mapped[str] = mapped_column(String(20))
    position: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    event_id: Mapped[str | None] = mapped_column(String(64), default=None)
    value: Mapped[float | None] = mapped_column(Float, default=None)  # a purchase's or cart's amount
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    user_token: Mapped[str | None] = mapped_column(String(64), default=None)  # the storefront's pseudonymous id
