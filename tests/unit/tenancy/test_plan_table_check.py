"""Start-up refuses a plan table that lacks the plan of a live tenant: otherwise each of that tenant's requests
would answer 422 unknown_plan, the operator's error reported as the merchant's."""

import pytest

from trooply.config import DEFAULT_PLANS, PlanLimits, UnknownPlan
from trooply.db import Database
from trooply.tenancy.service import TenantService


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'plans.db'}")
    database.migrate()
    yield database
    database.close()


def test_a_plan_dropped_from_the_table_while_tenants_use_it_fails_start_up(db):
    TenantService(db, plans=DEFAULT_PLANS).create_tenant("shop", "pro")
    TenantService(db, plans=DEFAULT_PLANS).check_plans()
    only_free = TenantService(db, plans={"free": DEFAULT_PLANS["free"]})
    with pytest.raises(UnknownPlan, match="'pro' \\(1 tenant\\)"):
        only_free.check_plans()


def test_a_deleted_tenant_on_a_dropped_plan_does_not_block_start_up(db):
    tenants = TenantService(db, plans={**DEFAULT_PLANS, "trial": PlanLimits(rate_limit=5)})
    trial = tenants.create_tenant("trial shop", "trial")
    assert tenants.mark_deleted(trial.tenant_id)
    TenantService(db, plans=DEFAULT_PLANS).check_plans()
