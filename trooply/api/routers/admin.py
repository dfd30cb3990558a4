"""The admin API, for operators holding TROOPLY_ADMIN_TOKEN: tenants and their keys. Mounted only when the
token is set (trooply/api/app.py); without it every /admin path is 404."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from trooply.admin.schemas import TenantCreated, TenantDeletion, TenantIn, TenantOut, TenantPage, TenantPatch
from trooply.api.body import StrictJsonRoute
from trooply.api.deps import AdminDep, require_admin_token
from trooply.tenancy.schemas import RotatedKeys

router = APIRouter(prefix="/admin/v1", tags=["admin"], route_class=StrictJsonRoute,
                   dependencies=[Depends(require_admin_token)])
# The ids `tenants create` issues; anything else could only be not found, so it is refused before a query.
TenantIdPath = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post("/tenants", status_code=201, response_model=TenantCreated)
def create_tenant(tenant: TenantIn, admin: AdminDep, response: Response):
    """Creates a tenant and answers its keys: shown this once."""
    response.headers["Cache-Control"] = "no-store"
    return admin.create(tenant.name, tenant.plan)


@router.get("/tenants", response_model=TenantPage)
def list_tenants(admin: AdminDep, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                 after: Annotated[str | None, Query(max_length=40)] = None):
    return admin.page(limit, after)


@router.get("/tenants/{tenant_id}", response_model=TenantOut)
def get_tenant(tenant_id: TenantIdPath, admin: AdminDep):
    return admin.get(tenant_id)


@router.patch("/tenants/{tenant_id}", response_model=TenantOut)
def update_tenant(tenant_id: TenantIdPath, patch: TenantPatch, admin: AdminDep):
    """A new plan takes effect at once: quotas and rate limits included."""
    return admin.update(tenant_id, patch)


@router.post("/tenants/{tenant_id}/keys/rotate", response_model=RotatedKeys)
def rotate_keys(tenant_id: TenantIdPath, admin: AdminDep, response: Response):
    """Revokes both of the tenant's keys and answers the new ones: shown this once."""
    response.headers["Cache-Control"] = "no-store"
    return vars(admin.rotate_keys(tenant_id))


@router.delete("/tenants/{tenant_id}", status_code=202, response_model=TenantDeletion)
def delete_tenant(tenant_id: TenantIdPath, admin: AdminDep):
    """Revokes the tenant's keys at once; its products, vectors, logs, feedback, rules and usage are purged in
    the background. Until the purge ends, asking again answers the same."""
    return admin.delete(tenant_id)
