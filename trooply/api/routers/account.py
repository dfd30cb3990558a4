"""The tenant's own account, for its secret key: who it is, its plan and active keys, and key rotation."""

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import CatalogPrincipal, TenantsDep

router = APIRouter(prefix="/v1", tags=["account"], route_class=StrictJsonRoute)


class KeyOut(BaseModel):
    kind: str = Field(description="secret or publishable")
    prefix: str = Field(description="the key's first characters; the key itself is stored only as a hash")
    created_at: datetime


class AccountOut(BaseModel):
    tenant_id: str
    name: str
    plan: str
    created_at: datetime
    keys: list[KeyOut]


class RotatedKeys(BaseModel):
    tenant_id: str
    secret_key: str
    publishable_key: str


@router.get("/account", response_model=AccountOut)
def account(principal: CatalogPrincipal, tenants: TenantsDep):
    return tenants.account(principal.tenant_id)


@router.post("/keys/rotate", response_model=RotatedKeys)
def rotate_keys(principal: CatalogPrincipal, tenants: TenantsDep, response: Response):
    """Revokes both of the tenant's keys, the one calling included, and answers the new ones: shown once."""
    response.headers["Cache-Control"] = "no-store"
    return vars(tenants.rotate_keys(principal.tenant_id))
