from fastapi import APIRouter

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import ContainerDep, FeedbackPrincipal
from trooply.feedback.service import FeedbackIn

router = APIRouter(prefix="/v1/search", tags=["feedback"], route_class=StrictJsonRoute)


@router.post("/feedback", status_code=202)
def send_feedback(feedback: FeedbackIn, principal: FeedbackPrincipal, container: ContainerDep) -> dict[str, bool]:
    return {"recorded": True, "duplicate": not container.feedback.record(principal.tenant_id, feedback)}
