"""This month's metered detect and embed calls against the plan's allowance (secret key); listed under
detection in the API docs, beside the calls it counts."""

from typing import Any

from fastapi import APIRouter

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import CatalogPrincipal, UsageDep

router = APIRouter(prefix="/v1", tags=["detection"], route_class=StrictJsonRoute)


@router.get("/usage")
def usage(principal: CatalogPrincipal, metering: UsageDep) -> dict[str, Any]:
    return metering.report(principal.tenant_id, principal.plan)
