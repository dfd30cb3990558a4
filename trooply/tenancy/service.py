"""Tenants, their API keys (stored as hashes only) and what each key may do."""

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from trooply.config import PLANS
from trooply.db import Database
from trooply.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from trooply.tenancy.models import ApiKey, Tenant
from trooply.tenancy.repository import TenantRepository

SECRET, PUBLISHABLE = "secret", "publishable"
KEY_PREFIXES = {SECRET: "sk_", PUBLISHABLE: "pk_"}
# A secret key does everything for its tenant; a publishable key is safe in a browser.
SCOPES = {
    SECRET: frozenset({"catalog", "search", "feedback", "admin"}),
    PUBLISHABLE: frozenset({"search", "feedback"}),
}


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    plan: str
    key_kind: str

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


class TenantService:
    def __init__(self, db: Database, key_cache_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.db = db
        # Authenticated keys are remembered briefly: a database read per search is measurable latency.
        # A revoked key therefore keeps working this long in other processes (TROOPLY_KEY_CACHE_SECONDS).
        self.key_cache_seconds = key_cache_seconds
        self._known_keys: dict[str, tuple[float, Principal]] = {}

    def create_tenant(self, name: str, plan: str) -> TenantCredentials:
        if plan not in PLANS:
            raise InvalidRequest(f"unknown plan {plan!r}; use one of {', '.join(PLANS)}", code="invalid_plan")
        if not name.strip():
            raise InvalidRequest("tenant name must not be empty", code="invalid_name")
        tenant_id = f"ten_{uuid.uuid4().hex[:20]}"
        with self.db.session() as session:
            repo = TenantRepository(session)
            repo.add(Tenant(id=tenant_id, name=name.strip(), plan=plan))
            session.flush()
            return self._issue_keys(repo, tenant_id)

    def rotate_keys(self, tenant_id: str) -> TenantCredentials:
        with self.db.session() as session:
            repo = TenantRepository(session)
            if repo.get(tenant_id) is None:
                raise NotFound(f"no tenant {tenant_id!r}", code="tenant_not_found")
            repo.revoke_keys(tenant_id)
            self._known_keys = {h: known for h, known in self._known_keys.items() if known[1].tenant_id != tenant_id}
            return self._issue_keys(repo, tenant_id)

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
            found = TenantRepository(session).active_key(key_hash)
        if found is None:
            raise Unauthorized("invalid or revoked API key", code="invalid_api_key")
        key, tenant = found
        principal = Principal(tenant_id=tenant.id, plan=tenant.plan, key_kind=key.kind)
        self._known_keys[key_hash] = (self._clock() + self.key_cache_seconds, principal)
        return principal

    def account(self, tenant_id: str) -> dict:
        """The tenant as its own keys see it: name, plan, and which keys are active (prefixes only)."""
        with self.db.session() as session:
            repo = TenantRepository(session)
            tenant = repo.get(tenant_id)
            if tenant is None:
                raise NotFound(f"no tenant {tenant_id!r}", code="tenant_not_found")
            keys = [{"kind": key.kind, "prefix": key.prefix, "created_at": key.created_at}
                    for key in repo.active_keys(tenant_id)]
        return {"tenant_id": tenant.id, "name": tenant.name, "plan": tenant.plan, "created_at": tenant.created_at,
                "keys": keys}

    def get_plan(self, tenant_id: str) -> str:
        with self.db.session() as session:
            tenant = TenantRepository(session).get(tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant {tenant_id!r}", code="tenant_not_found")
        return tenant.plan

    @staticmethod
    def _issue_keys(repo: TenantRepository, tenant_id: str) -> TenantCredentials:
        raw = {kind: prefix + secrets.token_urlsafe(32) for kind, prefix in KEY_PREFIXES.items()}
        for kind, key in raw.items():
            repo.add_key(ApiKey(id=f"key_{uuid.uuid4().hex[:20]}", tenant_id=tenant_id, kind=kind,
                                key_hash=hash_key(key), prefix=key[:8]))
        return TenantCredentials(tenant_id, raw[SECRET], raw[PUBLISHABLE])
