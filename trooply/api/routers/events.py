"""Shopper events in batches (publishable key): clicks, add-to-cart and purchases on search results."""

from fastapi import APIRouter, Request, Response

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import FeedbackDep, FeedbackPrincipal
from trooply.errors import PayloadTooLarge
from trooply.feedback.schemas import EventsIn, EventsReport

# 1,000 events of the largest allowed fields come to about 700 KB; nothing bigger is read.
EVENTS_MAX_BODY_BYTES = 1024 * 1024


class EventsRoute(StrictJsonRoute):
    """Refuses a body declared larger than EVENTS_MAX_BODY_BYTES before reading it, and one that turns out larger."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def capped_handler(request: Request) -> Response:
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > EVENTS_MAX_BODY_BYTES:
                raise _too_large()
            if len(await request.body()) > EVENTS_MAX_BODY_BYTES:
                raise _too_large()
            return await handler(request)

        return capped_handler


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"an events batch may be {EVENTS_MAX_BODY_BYTES} bytes at most",
                           details={"max_bytes": EVENTS_MAX_BODY_BYTES})


router = APIRouter(prefix="/v1", tags=["feedback"], route_class=EventsRoute)


@router.post("/events", response_model=EventsReport)
def send_events(batch: EventsIn, principal: FeedbackPrincipal, feedback: FeedbackDep) -> EventsReport:
    """Up to 1,000 events: each valid one is stored (an event_id seen before is acknowledged, not counted again);
    each invalid one is reported with its index and code. More than 1,000: 422 `too_many_events`, nothing stored."""
    return feedback.record_events(principal.tenant_id, batch.events)
