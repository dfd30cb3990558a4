"""Every feed query: one tenant's feeds, syncs and feed membership (`FeedRepository`), and the schedule's
and restart's reads across tenants (`FeedMaintenance`)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from trooply.catalog.models import FAILED, IngestItem
from trooply.db import MaintenanceRepository, TenantScopedRepository, utcnow
from trooply.feeds.models import MANUAL, PENDING, RUNNING, UNFINISHED, Feed, FeedProduct, FeedSync
from trooply.tenancy.models import Tenant


class FeedRepository(TenantScopedRepository):
    def get(self, feed_id: str) -> Feed | None:
        return self._get(Feed, id=feed_id)

    def all_feeds(self) -> list[Feed]:
        return list(self.session.scalars(self._select(Feed).order_by(Feed.created_at, Feed.id)))

    def count(self) -> int:
        return self.session.scalar(self._select(Feed, func.count())) or 0

    def add(self, row: Feed | FeedSync) -> None:
        self._add(row)

    def delete(self, feed_id: str) -> bool:
        """The feed with its syncs and membership rows (the products stay)."""
        for model in (FeedProduct, FeedSync):
            self.session.execute(self._delete(model).where(model.feed_id == feed_id))  # type: ignore[attr-defined]
        result = cast(CursorResult, self.session.execute(self._delete(Feed).where(Feed.id == feed_id)))
        return bool(result.rowcount)

    def claim(self, feed_id: str, sync_id: str) -> bool:
        """Makes `sync_id` the feed's one running sync, unless one already is: atomic across processes."""
        result = cast(CursorResult, self.session.execute(
            self._update(Feed).where(Feed.id == feed_id, Feed.active_sync_id.is_(None))
            .values(active_sync_id=sync_id, syncs_started=Feed.syncs_started + 1)
            .execution_options(synchronize_session=False)))
        return bool(result.rowcount)

    def release(self, feed_id: str, sync_id: str, **values: Any) -> None:
        self.session.execute(self._update(Feed).where(Feed.id == feed_id, Feed.active_sync_id == sync_id)
                             .values(active_sync_id=None, **values).execution_options(synchronize_session=False))

    def take_sync(self, sync_id: str, stale_before: datetime) -> bool:
        """Marks the sync running for this run: a pending one, or a running one whose run fell silent before
        `stale_before`, while no other sync of the tenant runs (one sync per account at a time, across worker
        processes). Atomic: of two deliveries of the same sync, one runs it."""
        # PostgreSQL: two workers taking two syncs of one tenant queue on the tenant's row, so the second's check
        # sees the first's sync running (SQLite writes one transaction at a time anyway).
        self.session.execute(select(Tenant.id).where(Tenant.id == self.tenant_id).with_for_update())
        other = aliased(FeedSync)
        another_runs = exists().where(other.tenant_id == self.tenant_id, other.id != sync_id,
                                      other.status == RUNNING, other.heartbeat_at >= stale_before)
        result = cast(CursorResult, self.session.execute(
            self._update(FeedSync).where(FeedSync.id == sync_id, or_(
                FeedSync.status == PENDING, (FeedSync.status == RUNNING) & (FeedSync.heartbeat_at < stale_before)),
                ~another_runs)
            .values(status=RUNNING, heartbeat_at=utcnow()).execution_options(synchronize_session=False)))
        return bool(result.rowcount)

    def sync_running(self, stale_before: datetime) -> bool:
        """Whether a sync of the tenant runs now (one that fell silent before `stale_before` is gone)."""
        return bool(self.session.scalar(self._select(FeedSync, func.count()).where(
            FeedSync.status == RUNNING, FeedSync.heartbeat_at >= stale_before)))

    def get_sync(self, sync_id: str) -> FeedSync | None:
        return self._get(FeedSync, id=sync_id)

    def update_sync(self, sync_id: str, **values: Any) -> None:
        self.session.execute(self._update(FeedSync).where(FeedSync.id == sync_id).values(**values)
                             .execution_options(synchronize_session=False))

    def recent_syncs(self, feed_id: str, limit: int) -> list[FeedSync]:
        return list(self.session.scalars(self._select(FeedSync).where(FeedSync.feed_id == feed_id)
                                         .order_by(FeedSync.created_at.desc()).limit(limit)))

    def prune_syncs(self, feed_id: str, keep: int) -> None:
        old = self.session.scalars(self._select(FeedSync, FeedSync.id).where(
            FeedSync.feed_id == feed_id, FeedSync.status.not_in(UNFINISHED))
            .order_by(FeedSync.created_at.desc()).offset(keep)).all()
        if old:
            self.session.execute(self._delete(FeedSync).where(FeedSync.id.in_(old)))

    def members(self, feed_id: str, product_ids: Sequence[str]) -> dict[str, FeedProduct]:
        rows = self.session.scalars(self._select(FeedProduct).where(FeedProduct.feed_id == feed_id,
                                                                    FeedProduct.product_id.in_(product_ids)))
        return {row.product_id: row for row in rows}

    def mark_seen(self, feed_id: str, product_ids: Sequence[str], number: int) -> None:
        known = self.members(feed_id, product_ids)
        if known:
            self.session.execute(self._update(FeedProduct).where(
                FeedProduct.feed_id == feed_id, FeedProduct.product_id.in_(list(known)))
                .values(seen=number).execution_options(synchronize_session=False))
        for product_id in product_ids:
            if product_id not in known:
                self._add(FeedProduct(feed_id=feed_id, product_id=product_id, seen=number))

    def missing(self, feed_id: str, number: int, limit: int) -> list[str]:
        """Products of the feed that the sync numbered `number` did not see, a page at a time."""
        return list(self.session.scalars(self._select(FeedProduct, FeedProduct.product_id).where(
            FeedProduct.feed_id == feed_id, FeedProduct.seen < number).order_by(FeedProduct.product_id).limit(limit)))

    def count_members(self, feed_id: str, seen_before: int | None = None) -> int:
        """The products the feed supplies; those a sync numbered `seen_before` did not see, when given."""
        query = self._select(FeedProduct, func.count()).where(FeedProduct.feed_id == feed_id)
        if seen_before is not None:
            query = query.where(FeedProduct.seen < seen_before)
        return self.session.scalar(query) or 0

    def forget(self, feed_id: str, product_ids: Sequence[str]) -> None:
        self.session.execute(self._delete(FeedProduct).where(FeedProduct.feed_id == feed_id,
                                                             FeedProduct.product_id.in_(product_ids)))

    def ingest_failures(self, job_ids: Sequence[str]) -> dict[str, int]:
        """Products of these ingest jobs that failed, by error code."""
        if not job_ids:
            return {}
        rows = self.session.execute(self._select(IngestItem, IngestItem.error_code, func.count()).where(
            IngestItem.job_id.in_(job_ids), IngestItem.status == FAILED).group_by(IngestItem.error_code))
        return {code or "unknown": count for code, count in rows}


class FeedMaintenance(MaintenanceRepository):
    def due_feeds(self, now: datetime) -> list[tuple[str, str]]:
        """(tenant id, feed id) of every scheduled feed whose next sync is due and that has none running."""
        rows = self.session.execute(select(Feed.tenant_id, Feed.id).where(
            Feed.schedule != MANUAL, Feed.next_sync_at <= now, Feed.active_sync_id.is_(None)))
        return [(tenant_id, feed_id) for tenant_id, feed_id in rows]

    def unfinished_syncs(self, stale_before: datetime | None) -> list[tuple[str, str]]:
        """Syncs to send again: every unfinished one, or those queued or silent since before `stale_before`."""
        query = select(FeedSync.tenant_id, FeedSync.id).where(FeedSync.status.in_(UNFINISHED))
        if stale_before is not None:
            query = query.where(or_(FeedSync.heartbeat_at < stale_before,
                                    FeedSync.heartbeat_at.is_(None) & (FeedSync.created_at < stale_before)))
        return [(tenant_id, sync_id) for tenant_id, sync_id in self.session.execute(query)]

    def requeue_running(self) -> None:
        """Embedded start: no run survived the last process, so a running sync is pending again."""
        self.session.execute(update(FeedSync).where(FeedSync.status == RUNNING).values(status=PENDING))
