from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from trooply.db import Base, utcnow


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when an operator deletes the tenant: its keys are revoked then, and the row goes when the purge ends.
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    # ISO 4217, upper case: the currency of the tenant's prices that name none (the portal shows them in it).
    default_currency: Mapped[str | None] = mapped_column(String(3), default=None)
    # The language its products' words are tokenised in (trooply.index.words.LANGUAGES; None: English), and the
    # language its indexed words are all in: while the two differ, a re-tokenise is due (trooply.tenancy.languages).
    language: Mapped[str | None] = mapped_column(String(20), default=None)
    words_language: Mapped[str | None] = mapped_column(String(20), default=None)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # secret | publishable
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class UsageCounter(Base):
    """Metered calls per tenant, calendar month (UTC) and endpoint."""

    __tablename__ = "usage_counters"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    endpoint: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class AllowedOrigin(Base):
    """A browser origin (`https://shop.example`) from which the tenant's publishable key is accepted."""

    __tablename__ = "tenant_origins"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    origin: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
