from fastapi import APIRouter, Response

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import CatalogPrincipal, RulesDep
from trooply.ranking.schemas import RuleIn, RuleOut

router = APIRouter(prefix="/v1/rules", tags=["merchandising"], route_class=StrictJsonRoute)


@router.post("", status_code=201, response_model=RuleOut)
def create_rule(rule: RuleIn, principal: CatalogPrincipal, rules: RulesDep):
    return rules.create(principal.tenant_id, rule)


@router.get("", response_model=dict[str, list[RuleOut]])
def list_rules(principal: CatalogPrincipal, rules: RulesDep):
    return {"rules": rules.all_of(principal.tenant_id)}


@router.delete("/{rule_id}", status_code=204)
def delete_rule(rule_id: str, principal: CatalogPrincipal, rules: RulesDep) -> Response:
    rules.delete(principal.tenant_id, rule_id)
    return Response(status_code=204)
