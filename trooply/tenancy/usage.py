"""Usage metering: detect and embed calls counted per tenant and month against the plan's allowance."""

from typing import cast

from sqlalchemy import CursorResult, func, select, update

from trooply.config import Settings
from trooply.db import Database, utcnow
from trooply.errors import NotFound, QuotaExceeded
from trooply.tenancy.models import UsageCounter
from trooply.tenancy.repository import TenantRepository

METERED_ENDPOINTS = ("detect", "embed")


def current_period() -> str:
    return utcnow().strftime("%Y-%m")


class UsageService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def consume(self, tenant_id: str, endpoint: str) -> None:
        """Counts one call, or refuses it with `quota_exceeded` once the month's allowance is spent."""
        period = current_period()
        with self.db.session() as session:
            tenant = TenantRepository(session).lock(tenant_id)  # serialises the check across processes
            if tenant is None:
                raise NotFound("tenant not found", code="tenant_not_found")
            plan = tenant.plan
            allowance = self.settings.plan_monthly_item_calls(plan)
            used = session.scalar(select(func.coalesce(func.sum(UsageCounter.count), 0)).where(
                UsageCounter.tenant_id == tenant_id, UsageCounter.period == period)) or 0
            if allowance is not None and used >= allowance:
                raise QuotaExceeded(f"the {plan} plan allows {allowance} detect/embed calls a month; "
                                    f"{period} is used up", details={"period": period, "allowance": allowance})
            bumped = cast(CursorResult, session.execute(update(UsageCounter).where(
                UsageCounter.tenant_id == tenant_id, UsageCounter.period == period,
                UsageCounter.endpoint == endpoint).values(count=UsageCounter.count + 1)))
            if not bumped.rowcount:
                session.add(UsageCounter(tenant_id=tenant_id, period=period, endpoint=endpoint, count=1))

    def report(self, tenant_id: str, plan: str) -> dict:
        period = current_period()
        with self.db.session() as session:
            rows = session.execute(select(UsageCounter.endpoint, UsageCounter.count).where(
                UsageCounter.tenant_id == tenant_id, UsageCounter.period == period)).all()
        counts = {endpoint: 0 for endpoint in METERED_ENDPOINTS} | dict(rows)
        allowance = self.settings.plan_monthly_item_calls(plan)
        used = sum(counts.values())
        return {"plan": plan, "period": period, "counts": counts, "allowance": allowance,
                "remaining": None if allowance is None else max(0, allowance - used)}
