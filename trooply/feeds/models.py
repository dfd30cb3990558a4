from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from trooply.db import Base, utcnow

PENDING, RUNNING, COMPLETED, FAILED = "pending", "running", "completed", "failed"
UNFINISHED = (PENDING, RUNNING)
MANUAL, HOURLY, DAILY = "manual", "hourly", "daily"
SCHEDULE_SECONDS = {HOURLY: 3600.0, DAILY: 86400.0}


class Feed(Base):
    """A catalogue feed the tenant publishes (Merchant Center, Shopify, our CSV/JSONL), kept in sync."""

    __tablename__ = "feeds"
    __table_args__ = (Index("ix_feeds_due", "schedule", "next_sync_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(20))
    schedule: Mapped[str] = mapped_column(String(10), default=MANUAL)
    delete_missing: Mapped[bool] = mapped_column(default=False)
    # The validators and digest of the last body synced in full: an unchanged feed is a no-op.
    etag: Mapped[str | None] = mapped_column(String(512), default=None)
    last_modified: Mapped[str | None] = mapped_column(String(100), default=None)
    content_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # One sync at a time: set (atomically, where it was null) when a sync is queued, cleared when it ends.
    active_sync_id: Mapped[str | None] = mapped_column(String(40), default=None)
    syncs_started: Mapped[int] = mapped_column(default=0)  # numbers each sync; marks the products it saw
    next_sync_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FeedSync(Base):
    """One run of a feed: what it found and did."""

    __tablename__ = "feed_syncs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    feed_id: Mapped[str] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    trigger: Mapped[str] = mapped_column(String(10))  # manual | schedule | created
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    not_modified: Mapped[bool] = mapped_column(default=False)
    # added, updated, images_changed, unchanged, deleted, rejected, failed
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    failed_by_code: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # refused while syncing
    rejected: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # the first rejected items
    jobs: Mapped[list[str]] = mapped_column(JSON, default=list)  # ingest jobs of added and re-imaged products
    bytes: Mapped[int] = mapped_column(default=0)
    duration_s: Mapped[float | None] = mapped_column(Float, default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when a run takes the sync and as it progresses: a run silent for long is gone, and another may take over.
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class FeedProduct(Base):
    """A product a feed supplies, with the number of the last sync that saw it: the ones a sync did not see
    left the feed."""

    __tablename__ = "feed_products"
    __table_args__ = (Index("ix_feed_products_seen", "feed_id", "seen"),)

    feed_id: Mapped[str] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    seen: Mapped[int]
