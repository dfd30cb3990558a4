"""Usage metering: detect and embed calls counted per tenant and month against the plan's allowance."""

from trooply.config import Settings
from trooply.db import Database, utcnow
from trooply.errors import QuotaExceeded
from trooply.tenancy.repository import TenantRepository
from trooply.tenancy.service import live_tenant

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
            repo = TenantRepository(session, tenant_id)
            tenant = live_tenant(repo, lock=True)  # serialises the check across processes; a deleted tenant is gone
            plan = tenant.plan
            allowance = self.settings.plan(plan).monthly_item_calls
            used = repo.usage_total(period)
            if allowance is not None and used >= allowance:
                raise QuotaExceeded(f"the {plan} plan allows {allowance} detect/embed calls a month; "
                                    f"{period} is used up", details={"period": period, "allowance": allowance})
            repo.count_usage(period, endpoint)

    def report(self, tenant_id: str, plan: str) -> dict:
        period = current_period()
        with self.db.session() as session:
            stored = TenantRepository(session, tenant_id).usage_counts(period)
        counts = {endpoint: 0 for endpoint in METERED_ENDPOINTS} | stored
        allowance = self.settings.plan(plan).monthly_item_calls
        used = sum(counts.values())
        return {"plan": plan, "period": period, "counts": counts, "allowance": allowance,
                "remaining": None if allowance is None else max(0, allowance - used)}
