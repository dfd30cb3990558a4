"""Search analytics kept in aggregated form: counters per tenant and hour (or day) that each search and event
adds to as it is written, so that a month of a busy store is read from a few thousand rows."""

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from trooply.db import Base


def _tenant() -> Mapped[str]:
    return mapped_column(String(40), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)


class SearchBucket(Base):
    """One hour of one tenant's searches of one mode and profile, and the events on them (by the search's hour)."""

    __tablename__ = "analytics_search_hours"

    tenant_id: Mapped[str] = _tenant()
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)  # hours since 1970-01-01 UTC
    mode: Mapped[str] = mapped_column(String(20), primary_key=True)
    profile: Mapped[str] = mapped_column(String(40), primary_key=True)  # "" when none
    searches: Mapped[int] = mapped_column(default=0)
    zero_results: Mapped[int] = mapped_column(default=0)
    searches_clicked: Mapped[int] = mapped_column(default=0)  # searches with at least one click
    clicks: Mapped[int] = mapped_column(default=0)
    click_position_sum: Mapped[int] = mapped_column(default=0)  # 0-based positions, for the average
    searches_carted: Mapped[int] = mapped_column(default=0)
    add_to_carts: Mapped[int] = mapped_column(default=0)
    searches_purchased: Mapped[int] = mapped_column(default=0)
    purchases: Mapped[int] = mapped_column(default=0)


class RevenueBucket(Base):
    """Purchases after a search and their amounts, per hour and currency (amounts in different currencies never add)."""

    __tablename__ = "analytics_revenue_hours"

    tenant_id: Mapped[str] = _tenant()
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    purchases: Mapped[int] = mapped_column(default=0)
    revenue: Mapped[float] = mapped_column(Float, default=0.0)


class QueryDay(Base):
    """One normalised text query on one day: how often, how often it found nothing, how often it was clicked."""

    __tablename__ = "analytics_query_days"
    # The top-queries report reads each day's leaders by one measure, then sums only those queries
    # (trooply/analytics/service.py): an index per measure, and one by query.
    __table_args__ = (Index("ix_query_days_searches", "tenant_id", "day", "searches"),
                      Index("ix_query_days_zero_results", "tenant_id", "day", "zero_results"),
                      Index("ix_query_days_unclicked", "tenant_id", "day", "searches_clicked", "searches"),
                      Index("ix_query_days_query", "tenant_id", "query", "day"))

    tenant_id: Mapped[str] = _tenant()
    day: Mapped[int] = mapped_column(Integer, primary_key=True)  # days since 1970-01-01 UTC
    query: Mapped[str] = mapped_column(String(200), primary_key=True)
    searches: Mapped[int] = mapped_column(default=0)
    zero_results: Mapped[int] = mapped_column(default=0)
    searches_clicked: Mapped[int] = mapped_column(default=0)
    clicks: Mapped[int] = mapped_column(default=0)


class ProductDay(Base):
    """One product's clicks, add-to-carts and purchases from search results on one day."""

    __tablename__ = "analytics_product_days"

    tenant_id: Mapped[str] = _tenant()
    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    clicks: Mapped[int] = mapped_column(default=0)
    add_to_carts: Mapped[int] = mapped_column(default=0)
    purchases: Mapped[int] = mapped_column(default=0)
