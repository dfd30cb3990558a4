"""Tenant rows, API keys and usage counters. `TenantRepository` is one tenant's view of them;
`TenantDirectory` answers the one question asked before any tenant is known: whose key is this?"""

from typing import cast

from sqlalchemy import ColumnElement, CursorResult, exists, func, select, update

from trooply.db import MaintenanceRepository, TenantScopedRepository, utcnow
from trooply.index.words import DEFAULT_LANGUAGE
from trooply.tenancy.models import AllowedOrigin, ApiKey, Tenant, UsageCounter


class TenantRepository(TenantScopedRepository):
    def add(self, tenant: Tenant) -> None:
        if tenant.id != self.tenant_id:
            raise ValueError("a repository adds only its own tenant")
        self.session.add(tenant)
        self.session.flush()  # the tenant row must exist before its keys reference it

    def get(self) -> Tenant | None:
        return self.session.scalars(select(Tenant).where(self._is_this_tenant())).first()

    def lock(self) -> Tenant | None:
        """The tenant, write-locked until the transaction ends, so that quota checks run one at a time.
        A no-op UPDATE first, not SELECT FOR UPDATE, which SQLite ignores: there the UPDATE takes the
        database write lock before anything is read; on PostgreSQL it locks the tenant's row."""
        self.session.execute(update(Tenant).where(self._is_this_tenant()).values(name=Tenant.name)
                             .execution_options(synchronize_session=False))
        return self.get()

    def add_key(self, key: ApiKey) -> None:
        self._add(key)

    def active_keys(self) -> list[ApiKey]:
        return list(self.session.scalars(self._select(ApiKey).where(ApiKey.revoked_at.is_(None))
                                         .order_by(ApiKey.kind)))

    def has_active_key(self, key_hash: str) -> bool:
        return self.session.scalar(self._select(ApiKey, ApiKey.id).where(
            ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))) is not None

    def revoke_keys(self) -> None:
        self.session.execute(self._update(ApiKey).where(ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow()))

    def usage_total(self, period: str) -> int:
        return self.session.scalar(self._select(UsageCounter, func.coalesce(func.sum(UsageCounter.count), 0))
                                   .where(UsageCounter.period == period)) or 0

    def usage_counts(self, period: str) -> dict[str, int]:
        rows = self.session.execute(self._select(UsageCounter, UsageCounter.endpoint, UsageCounter.count)
                                    .where(UsageCounter.period == period))
        return {endpoint: count for endpoint, count in rows}

    def count_usage(self, period: str, endpoint: str) -> None:
        """One more call of `endpoint` in `period`; callers hold `lock()`, so update-or-insert cannot race."""
        bumped = cast(CursorResult, self.session.execute(
            self._update(UsageCounter).where(UsageCounter.period == period, UsageCounter.endpoint == endpoint)
            .values(count=UsageCounter.count + 1)))
        if not bumped.rowcount:
            self._add(UsageCounter(period=period, endpoint=endpoint, count=1))

    def allowed_origins(self) -> list[str]:
        return list(self.session.scalars(self._select(AllowedOrigin, AllowedOrigin.origin)
                                         .order_by(AllowedOrigin.origin)))

    def replace_origins(self, origins: list[str]) -> None:
        self.session.execute(self._delete(AllowedOrigin))
        for origin in origins:
            self._add(AllowedOrigin(origin=origin))

    def _is_this_tenant(self) -> ColumnElement[bool]:
        # The tenants table is keyed by the tenant itself, not by a tenant_id column.
        return Tenant.id == self.tenant_id


class TenantDirectory(MaintenanceRepository):
    def active_key(self, key_hash: str) -> tuple[ApiKey, Tenant] | None:
        """Authentication: the unrevoked key with this hash and its tenant, whichever tenant that is."""
        row = self.session.execute(
            select(ApiKey, Tenant).join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        ).first()
        return (row[0], row[1]) if row else None

    def origin_is_listed(self, origin: str) -> bool:
        """Preflights, which carry no key: whether any live tenant allows this browser origin."""
        return bool(self.session.scalar(select(exists().where(
            AllowedOrigin.origin == origin, AllowedOrigin.tenant_id == Tenant.id, Tenant.deleted_at.is_(None)))))

    def languages_due(self) -> list[str]:
        """Live tenants whose indexed words are not all in their language yet: the re-tokenises to resume."""
        wanted, indexed = func.coalesce(Tenant.language, DEFAULT_LANGUAGE), func.coalesce(Tenant.words_language,
                                                                                            DEFAULT_LANGUAGE)
        return list(self.session.scalars(select(Tenant.id).where(Tenant.deleted_at.is_(None), wanted != indexed)))

    def plans_in_use(self) -> dict[str, int]:
        """Live tenants per plan name."""
        rows = self.session.execute(select(Tenant.plan, func.count()).where(Tenant.deleted_at.is_(None))
                                    .group_by(Tenant.plan))
        return {plan: count for plan, count in rows}
