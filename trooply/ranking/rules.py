"""Merchandising rules per tenant: boost or bury products matching a filter, optionally for one profile."""

import threading
import time
import uuid

from trooply.db import Database
from trooply.errors import InvalidRequest, NotFound
from trooply.index.filters import parse_filters
from trooply.ranking.engine import MerchandisingRule
from trooply.ranking.models import RuleRecord
from trooply.ranking.repository import RuleRepository
from trooply.ranking.schemas import RuleIn

MAX_RULES_PER_TENANT = 200


class RuleService:
    # Rules are read by every search; a short in-process cache keeps that off the database.
    CACHE_SECONDS = 5.0

    def __init__(self, db: Database, profile_names: list[str]) -> None:
        self.db = db
        self.profile_names = profile_names
        self._cache: dict[str, tuple[float, list[MerchandisingRule]]] = {}
        self._lock = threading.Lock()

    def create(self, tenant_id: str, rule: RuleIn) -> RuleRecord:
        parse_filters(rule.filters)  # validated exactly like search filters
        if rule.profile is not None and rule.profile not in self.profile_names:
            raise InvalidRequest(f"unknown profile {rule.profile!r}", code="unknown_profile")
        with self.db.session() as session:
            repo = RuleRepository(session, tenant_id)
            if repo.count() >= MAX_RULES_PER_TENANT:
                raise InvalidRequest(f"a tenant holds at most {MAX_RULES_PER_TENANT} rules", code="too_many_rules")
            record = RuleRecord(id=f"rule_{uuid.uuid4().hex[:20]}", tenant_id=tenant_id, **rule.model_dump())
            repo.add(record)
        self._forget(tenant_id)
        return record

    def all_of(self, tenant_id: str) -> list[RuleRecord]:
        with self.db.session() as session:
            return RuleRepository(session, tenant_id).all()

    def delete(self, tenant_id: str, rule_id: str) -> None:
        with self.db.session() as session:
            if not RuleRepository(session, tenant_id).delete(rule_id):
                raise NotFound(f"no rule {rule_id!r}", code="rule_not_found")
        self._forget(tenant_id)

    def active(self, tenant_id: str) -> list[MerchandisingRule]:
        with self._lock:
            cached = self._cache.get(tenant_id)
            if cached and cached[0] > time.monotonic():
                return cached[1]
        rules = [MerchandisingRule(tuple(parse_filters(r.filters)), r.weight, r.profile)
                 for r in self.all_of(tenant_id)]
        with self._lock:
            self._cache[tenant_id] = (time.monotonic() + self.CACHE_SECONDS, rules)
        return rules

    def _forget(self, tenant_id: str) -> None:
        with self._lock:
            self._cache.pop(tenant_id, None)
