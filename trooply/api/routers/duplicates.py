"""Catalogue duplicates (secret key): at once for small catalogues, or as a background scan."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Body, Query

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import CatalogPrincipal, DuplicatesDep
from trooply.duplicates.schemas import DEFAULT_THRESHOLD, MIN_THRESHOLD, DuplicateScanOut, DuplicatesOut, ScanRequest

router = APIRouter(prefix="/v1/duplicates", tags=["catalog"], route_class=StrictJsonRoute)
Threshold = Annotated[float, Query(ge=MIN_THRESHOLD, le=1.0, allow_inf_nan=False,
                                   description="cosine at which two products are duplicates")]
Limit = Annotated[int, Query(ge=1, le=500, description="groups per page")]
Cursor = Annotated[str | None, Query(max_length=64, description="the previous page's next_cursor")]


@router.get("", response_model=DuplicatesOut)
async def list_duplicates(principal: CatalogPrincipal, duplicates: DuplicatesDep,
                          threshold: Threshold = DEFAULT_THRESHOLD, limit: Limit = 50, cursor: Cursor = None):
    """Groups of near-duplicate products, largest first, computed now (up to
    TROOPLY_DUPLICATES_SYNC_MAX_PRODUCTS products; larger catalogues use a scan)."""
    # On the duplicates pool: the event loop awaits it, no request thread is held.
    return await asyncio.wrap_future(duplicates.submit_find(principal.tenant_id, threshold, limit, cursor))


@router.post("/scan", status_code=202, response_model=DuplicateScanOut)
def start_scan(principal: CatalogPrincipal, duplicates: DuplicatesDep,
               request: Annotated[ScanRequest | None, Body(description="optional: {\"threshold\": 0.97}")] = None):
    return duplicates.start_scan(principal.tenant_id, (request or ScanRequest()).threshold)


@router.get("/scan/{scan_id}", response_model=DuplicateScanOut)
def get_scan(scan_id: str, principal: CatalogPrincipal, duplicates: DuplicatesDep, limit: Limit = 50,
             cursor: Cursor = None):
    """The scan's status; once completed, its groups in the same shape as GET /v1/duplicates."""
    return duplicates.scan(principal.tenant_id, scan_id, limit, cursor)
