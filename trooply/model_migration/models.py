"""The model state in SQL: which CLIP model is active, which one a migration is building, and each tenant's
progress. One `model_state` row is the truth every process reads (with a short cache), so a cutover made by
one process reaches every API replica and worker within seconds, and a restart never undoes it."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from trooply.db import Base, utcnow
from trooply.tasks.walker import DONE as DONE
from trooply.tasks.walker import PENDING as PENDING
from trooply.tasks.walker import RUNNING as RUNNING

AUTO, MANUAL = "auto", "manual"
STATE_ID = 1  # the single row


class ModelStateRow(Base):
    """The models as {"model", "pretrained", "space", "dim"}: the active one, the one a migration builds
    (`target`), and the one a cutover replaced (`previous`, kept until cleanup so a rollback is one call)."""

    __tablename__ = "model_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    active: Mapped[dict[str, Any]] = mapped_column(JSON)
    target: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    previous: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    cutover: Mapped[str] = mapped_column(String(10), default=AUTO)  # when the target is ready: auto | manual
    # Models cleaned up whose vectors are still to drop: the drop task removes each one it finished.
    retired: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TenantMigration(Base):
    """One tenant's re-encode into the target model: products are taken in id order after `cursor`."""

    __tablename__ = "model_migration_tenants"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    cursor: Mapped[str | None] = mapped_column(String(256), default=None)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MigrationFailure(Base):
    """A product the target model has no vector for yet: its image failed, or ingest's second encode did.
    Each run of the tenant's task tries it again; a success removes the row."""

    __tablename__ = "model_migration_failures"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
