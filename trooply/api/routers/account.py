"""The tenant's own account, for its secret key: who it is, its plan and active keys, and key rotation."""


from fastapi import APIRouter, Response

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import CatalogPrincipal, TenantsDep
from trooply.tenancy.schemas import AccountOut, AccountPatch, AllowedOrigins, RotatedKeys

router = APIRouter(prefix="/v1", tags=["account"], route_class=StrictJsonRoute)


@router.get("/account", response_model=AccountOut)
def account(principal: CatalogPrincipal, tenants: TenantsDep):
    return tenants.account(principal.tenant_id)


@router.patch("/account", response_model=AccountOut)
def update_account(patch: AccountPatch, principal: CatalogPrincipal, tenants: TenantsDep):
    return tenants.set_default_currency(principal.tenant_id, patch.default_currency)


@router.post("/keys/rotate", response_model=RotatedKeys)
def rotate_keys(principal: CatalogPrincipal, tenants: TenantsDep, response: Response):
    """Revokes both of the tenant's keys, the one calling included, and answers the new ones: shown once."""
    response.headers["Cache-Control"] = "no-store"
    return vars(tenants.rotate_keys(principal.tenant_id, caller_key_hash=principal.key_hash))


@router.put("/account/allowed-origins", response_model=AllowedOrigins)
def set_allowed_origins(origins: AllowedOrigins, principal: CatalogPrincipal, tenants: TenantsDep):
    """Replaces the browser origins the publishable key is accepted from (exact origins; [] = none)."""
    return AllowedOrigins(allowed_origins=tenants.set_allowed_origins(principal.tenant_id, origins.allowed_origins))
