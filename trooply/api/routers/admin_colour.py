"""The admin API's colour refresh: recomputing stored colour signals after the colour model changed. Mounted
beside the tenant routes, under the same prefix and token (trooply/api/routers/admin.py)."""

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import ColourRefreshDep, require_admin_token
from trooply.colour_refresh.schemas import ColourRefreshOut

router = APIRouter(prefix="/admin/v1/colour-refresh", tags=["admin"], route_class=StrictJsonRoute,
                   dependencies=[Depends(require_admin_token)])


class ColourRefreshIn(BaseModel):
    restart: bool = Field(False, description="every tenant again from its first product (retries failed images)")


@router.get("", response_model=ColourRefreshOut)
def colour_refresh_status(refresh: ColourRefreshDep):
    """Each tenant's progress: products whose stored colour is current, failed images, total."""
    return refresh.status()


@router.post("", status_code=202, response_model=ColourRefreshOut)
def start_colour_refresh(body: ColourRefreshIn, refresh: ColourRefreshDep):
    """Recomputes, in the background, the stored colour of every tenant whose colour is older than the current
    signal (every tenant with `restart`): images fetched again, no CLIP encode; searches answer meanwhile."""
    return refresh.start(restart=body.restart)
