"""The admin API's own OpenAPI document, behind the admin token: the public /openapi.json and /docs describe
the tenant API only, so a deployment's operator routes are not advertised to every caller."""

from fastapi import APIRouter, Depends
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from trooply.api.body import StrictJsonRoute
from trooply.api.contract import Operation, complete
from trooply.api.deps import require_admin_token
from trooply.api.routers import admin, admin_colour, admin_models

router = APIRouter(prefix="/admin/v1", tags=["admin"], route_class=StrictJsonRoute,
                   dependencies=[Depends(require_admin_token)])


@router.get("/openapi.json", include_in_schema=False)
def admin_openapi() -> dict:
    """The same contract as the public document (operation ids, the admin token's scheme, the error envelope)."""
    routes = [route for part in (admin.router, admin_models.router, admin_colour.router) for route in part.routes
              if isinstance(route, APIRoute)]
    document = get_openapi(title="Trooply admin API", version="0.1.0", routes=routes)
    return complete(document, [Operation(route.path, frozenset(route.methods or ()), route) for route in routes])
