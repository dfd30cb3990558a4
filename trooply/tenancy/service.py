"""Tenants, their API keys (stored as hashes only) and what each key may do."""

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from trooply.config import DEFAULT_PLANS, PlanLimits, UnknownPlan, plan_limits
from trooply.db import Database, utcnow
from trooply.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from trooply.tenancy.models import ApiKey, Tenant
from trooply.tenancy.origins import normalise_origins
from trooply.tenancy.repository import TenantDirectory, TenantRepository

SECRET, PUBLISHABLE = "secret", "publishable"
KEY_PREFIXES = {SECRET: "sk_", PUBLISHABLE: "pk_"}
# A secret key does everything for its tenant; a publishable key is safe in a browser. Operating on tenants
# themselves is no tenant key's scope: the admin API takes TROOPLY_ADMIN_TOKEN (trooply.admin).
SCOPES = {
    SECRET: frozenset({"catalog", "search", "feedback"}),
    PUBLISHABLE: frozenset({"search", "feedback"}),
}


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    plan: str
    key_kind: str
    key_hash: str | None = None  # the key it authenticated with (a rotation re-checks it under the tenant's lock)
    # Browser origins the tenant's publishable key is accepted from (trooply/api/cors.py).
    allowed_origins: frozenset[str] = frozenset()

    def require(self, scope: str) -> None:
        if scope not in SCOPES[self.key_kind]:
            raise Forbidden(f"a {self.key_kind} key may not use this endpoint; use the secret key",
                            code="insufficient_scope")


@dataclass(frozen=True)
class TenantCredentials:
    tenant_id: str
    secret_key: str
    publishable_key: str


def hash_key(raw_key: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is enough (no brute force is feasible).
    return hashlib.sha256(raw_key.encode()).hexdigest()


def is_tenant_key(raw_key: str) -> bool:
    """Whether a token has the shape of a tenant's key (valid or not)."""
    return raw_key.startswith(tuple(KEY_PREFIXES.values()))


def live_tenant(repo: TenantRepository, lock: bool = False) -> Tenant:
    """The repository's tenant, unless it does not exist or is deleted (being purged): then `tenant_not_found`.
    `lock` write-locks its row until the transaction ends (a deletion waits for the caller, or it for it)."""
    tenant = repo.lock() if lock else repo.get()
    if tenant is None or tenant.deleted_at is not None:
        raise NotFound(f"no tenant {repo.tenant_id!r}", code="tenant_not_found")
    return tenant


class TenantService:
    def __init__(self, db: Database, key_cache_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 plans: Mapping[str, PlanLimits] = DEFAULT_PLANS) -> None:
        self._clock = clock
        self.db = db
        self.plans = plans
        # Authenticated keys are remembered briefly: a database read per search is measurable latency.
        # A revoked key therefore keeps working this long in other processes (TROOPLY_KEY_CACHE_SECONDS).
        self.key_cache_seconds = key_cache_seconds
        self._known_keys: dict[str, tuple[float, Principal]] = {}

    def check_plans(self) -> None:
        """At start-up: every live tenant's plan must be in the plan table. A plan dropped from TROOPLY_PLANS would
        otherwise answer each of its tenants' requests with 422 unknown_plan, the operator's error as theirs."""
        with self.db.session() as session:
            missing = {plan: n for plan, n in TenantDirectory(session).plans_in_use().items() if plan not in self.plans}
        if missing:
            listed = ", ".join(f"{plan!r} ({n} tenant{'s' if n > 1 else ''})" for plan, n in sorted(missing.items()))
            raise UnknownPlan(f"tenants are on plans TROOPLY_PLANS lacks: {listed}; add the plans, or move the "
                              "tenants first (PATCH /admin/v1/tenants/{id})", details={"plans": sorted(missing)})

    def create_tenant(self, name: str, plan: str) -> TenantCredentials:
        plan_limits(self.plans, plan)  # unknown_plan
        if not name.strip():
            raise InvalidRequest("tenant name must not be empty", code="invalid_name")
        tenant_id = f"ten_{uuid.uuid4().hex[:20]}"
        with self.db.session() as session:
            repo = TenantRepository(session, tenant_id)
            repo.add(Tenant(id=tenant_id, name=name.strip(), plan=plan))
            return self._issue_keys(repo, tenant_id)

    def rotate_keys(self, tenant_id: str, caller_key_hash: str | None = None) -> TenantCredentials:
        """New keys for the tenant. A tenant rotating its own keys names the key it called with: that key must
        still be active once the tenant is locked, so a rotation that evicts a leaked key (the admin's, or the
        owner's) cannot be undone by the leaked key's rotation racing it."""
        with self.db.session() as session:
            repo = TenantRepository(session, tenant_id)
            live_tenant(repo, lock=True)
            if caller_key_hash is not None and not repo.has_active_key(caller_key_hash):
                raise Unauthorized("invalid or revoked API key: it was rotated meanwhile", code="invalid_api_key")
            repo.revoke_keys()
            self.forget(tenant_id)
            return self._issue_keys(repo, tenant_id)

    def mark_deleted(self, tenant_id: str) -> bool:
        """Marks the tenant deleted and revokes its keys, in this process's cache too; False when no such
        tenant is left. Marking again is a no-op: the purge that follows (trooply.admin) may be sent again."""
        with self.db.session() as session:
            repo = TenantRepository(session, tenant_id)
            tenant = repo.lock()
            if tenant is None:
                return False
            if tenant.deleted_at is None:
                tenant.deleted_at = utcnow()
            repo.revoke_keys()
        self.forget(tenant_id)
        return True

    def forget(self, tenant_id: str) -> None:
        """Drops the tenant's keys from this process's cache: its next request reads keys and plan afresh."""
        self._known_keys = {h: known for h, known in self._known_keys.items() if known[1].tenant_id != tenant_id}

    def recently_authenticated(self, raw_key: str | None) -> Principal | None:
        """The key's principal if it was checked within the cache time; never touches the database."""
        known = self._known_keys.get(hash_key(raw_key)) if raw_key else None
        return known[1] if known is not None and known[0] > self._clock() else None

    def authenticate(self, raw_key: str | None) -> Principal:
        if not raw_key:
            raise Unauthorized("missing API key: send Authorization: Bearer <key>", code="missing_api_key")
        if (principal := self.recently_authenticated(raw_key)) is not None:
            return principal
        key_hash = hash_key(raw_key)
        with self.db.session() as session:
            found = TenantDirectory(session).active_key(key_hash)
            origins = TenantRepository(session, found[1].id).allowed_origins() if found is not None else []
        if found is None or found[1].deleted_at is not None:
            raise Unauthorized("invalid or revoked API key", code="invalid_api_key")
        key, tenant = found
        principal = Principal(tenant_id=tenant.id, plan=tenant.plan, key_kind=key.kind, key_hash=key_hash,
                              allowed_origins=frozenset(origins))
        self._known_keys[key_hash] = (self._clock() + self.key_cache_seconds, principal)
        return principal

    def account(self, tenant_id: str) -> dict:
        """The tenant as its own keys see it: name, plan, and which keys are active (prefixes only)."""
        with self.db.session() as session:
            repo = TenantRepository(session, tenant_id)
            tenant = live_tenant(repo)
            keys = [{"kind": key.kind, "prefix": key.prefix, "created_at": key.created_at}
                    for key in repo.active_keys()]
            origins = repo.allowed_origins()
        return {"tenant_id": tenant.id, "name": tenant.name, "plan": tenant.plan, "created_at": tenant.created_at,
                "default_currency": tenant.default_currency, "keys": keys, "allowed_origins": origins}

    def set_default_currency(self, tenant_id: str, currency: str | None) -> dict:
        with self.db.session() as session:
            live_tenant(TenantRepository(session, tenant_id)).default_currency = currency.upper() if currency else None
        return self.account(tenant_id)

    def allowed_origins(self, tenant_id: str) -> list[str]:
        with self.db.session() as session:
            repo = TenantRepository(session, tenant_id)
            live_tenant(repo)
            return repo.allowed_origins()

    def set_allowed_origins(self, tenant_id: str, origins: list[str]) -> list[str]:
        """Replaces the tenant's browser origins (an empty list: no browser access). This process applies them at
        once; others within TROOPLY_KEY_CACHE_SECONDS, like any change to a key."""
        normalised = normalise_origins(origins)
        with self.db.session() as session:
            repo = TenantRepository(session, tenant_id)
            live_tenant(repo, lock=True)
            repo.replace_origins(normalised)
        self.forget(tenant_id)
        return sorted(normalised)  # as they read back

    def origin_is_listed(self, origin: str) -> bool:
        with self.db.session() as session:
            return TenantDirectory(session).origin_is_listed(origin)

    def get_plan(self, tenant_id: str) -> str:
        with self.db.session() as session:
            return live_tenant(TenantRepository(session, tenant_id)).plan

    @staticmethod
    def _issue_keys(repo: TenantRepository, tenant_id: str) -> TenantCredentials:
        raw = {kind: prefix + secrets.token_urlsafe(32) for kind, prefix in KEY_PREFIXES.items()}
        for kind, key in raw.items():
            repo.add_key(ApiKey(id=f"key_{uuid.uuid4().hex[:20]}", tenant_id=tenant_id, kind=kind,
                                key_hash=hash_key(key), prefix=key[:8]))
        return TenantCredentials(tenant_id, raw[SECRET], raw[PUBLISHABLE])
