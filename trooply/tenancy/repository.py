from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trooply.db import utcnow
from trooply.tenancy.models import ApiKey, Tenant


class TenantRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, tenant: Tenant) -> None:
        self.session.add(tenant)

    def get(self, tenant_id: str) -> Tenant | None:
        return self.session.scalars(select(Tenant).where(Tenant.id == tenant_id)).first()

    def lock(self, tenant_id: str) -> Tenant | None:
        """The tenant, write-locked until the transaction ends, so that quota checks run one at a time.
        A no-op UPDATE first, not SELECT FOR UPDATE, which SQLite ignores: there the UPDATE takes the
        database write lock before anything is read; on PostgreSQL it locks the tenant's row."""
        self.session.execute(update(Tenant).where(Tenant.id == tenant_id).values(name=Tenant.name)
                             .execution_options(synchronize_session=False))
        return self.get(tenant_id)

    def add_key(self, key: ApiKey) -> None:
        self.session.add(key)

    def active_key(self, key_hash: str) -> tuple[ApiKey, Tenant] | None:
        row = self.session.execute(
            select(ApiKey, Tenant).join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        ).first()
        return (row[0], row[1]) if row else None

    def active_keys(self, tenant_id: str) -> list[ApiKey]:
        return list(self.session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_id,
                                                              ApiKey.revoked_at.is_(None)).order_by(ApiKey.kind)))

    def revoke_keys(self, tenant_id: str) -> None:
        self.session.execute(update(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
                             .values(revoked_at=utcnow()))
