"""Shoppers' feedback on search results (publishable key): clicks, add-to-cart, purchases."""

from fastapi import APIRouter

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import FeedbackDep, FeedbackPrincipal
from trooply.feedback.schemas import FeedbackIn

router = APIRouter(prefix="/v1/search", tags=["feedback"], route_class=StrictJsonRoute)


@router.post("/feedback", status_code=202)
def send_feedback(event: FeedbackIn, principal: FeedbackPrincipal, feedback: FeedbackDep) -> dict[str, bool]:
    return {"recorded": True, "duplicate": not feedback.record(principal.tenant_id, event)}
