from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import CatalogPrincipal, ContainerDep
from trooply.ranking.rules import RuleIn

router = APIRouter(prefix="/v1/rules", tags=["merchandising"], route_class=StrictJsonRoute)


class RuleOut(BaseModel):
    model_config = {"from_attributes": True}

    id: str
    name: str | None
    filters: dict[str, Any]
    weight: float
    profile: str | None
    created_at: datetime


@router.post("", status_code=201, response_model=RuleOut)
def create_rule(rule: RuleIn, principal: CatalogPrincipal, container: ContainerDep):
    return container.rules.create(principal.tenant_id, rule)


@router.get("", response_model=dict[str, list[RuleOut]])
def list_rules(principal: CatalogPrincipal, container: ContainerDep):
    return {"rules": container.rules.all_of(principal.tenant_id)}


@router.delete("/{rule_id}", status_code=204)
def delete_rule(rule_id: str, principal: CatalogPrincipal, container: ContainerDep) -> Response:
    container.rules.delete(principal.tenant_id, rule_id)
    return Response(status_code=204)
