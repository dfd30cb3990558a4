"""The scoring profiles a search may name (`profile`), with their signal weights: read-only."""

from fastapi import APIRouter

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import ProfilesDep, SearchPrincipal
from trooply.ranking.schemas import ProfileList

router = APIRouter(prefix="/v1", tags=["search"], route_class=StrictJsonRoute)


@router.get("/profiles", response_model=ProfileList)
def list_profiles(_principal: SearchPrincipal, profiles: ProfilesDep):
    return {"profiles": [{"name": profile.name, "weights": profile.weights.model_dump(),
                          "candidate_pool": profile.candidate_pool, "categories": profile.categories}
                         for profile in profiles.values()]}
