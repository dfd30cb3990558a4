"""Shopper events in batches (publishable key): clicks, add-to-cart and purchases on search results."""

from fastapi import APIRouter

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import FeedbackDep, FeedbackPrincipal
from trooply.feedback.schemas import EventsIn, EventsReport

# 1,000 events of the largest allowed fields come to about 700 KB; nothing bigger is read (StrictJsonRoute's cap,
# checked after the key).
EVENTS_MAX_BODY_BYTES = 1024 * 1024


router = APIRouter(prefix="/v1", tags=["feedback"], route_class=StrictJsonRoute.with_json_cap(EVENTS_MAX_BODY_BYTES))


@router.post("/events", response_model=EventsReport)
def send_events(batch: EventsIn, principal: FeedbackPrincipal, feedback: FeedbackDep) -> EventsReport:
    """Up to 1,000 events: each valid one is stored (an event_id seen before is acknowledged, not counted again);
    each invalid one is reported with its index and code. More than 1,000: 422 `too_many_events`, nothing stored."""
    return feedback.record_events(principal.tenant_id, batch.events)
