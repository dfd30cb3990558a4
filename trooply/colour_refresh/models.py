"""Each tenant's recompute of the stored colour signal: products are taken in id order after `cursor`."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from trooply.db import Base, utcnow
from trooply.tasks.walker import DONE as DONE
from trooply.tasks.walker import PENDING as PENDING
from trooply.tasks.walker import RUNNING as RUNNING


class ColourRefresh(Base):
    __tablename__ = "colour_refresh_tenants"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column()  # the colour signal's version the payloads are brought to
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    cursor: Mapped[str | None] = mapped_column(String(256), default=None)
    done: Mapped[int] = mapped_column(default=0)  # products whose colour is current (recomputed or already so)
    failed: Mapped[int] = mapped_column(default=0)  # products whose image could not be fetched: neutral colour
    total: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ColourRefreshFailure(Base):
    """A product whose image could not be fetched or decoded again: its colour stays neutral. A later run (a
    restart) that recomputes it, or finds it current, removes the row."""

    __tablename__ = "colour_refresh_failures"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    code: Mapped[str] = mapped_column(String(64))  # the error code ingest would give (image_fetch_failed, ...)
    message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
