"""Catalogue feeds kept in sync (secret key): register a Merchant Center, Shopify, CSV or JSONL feed by URL,
sync it now or on a schedule, and read what each sync did."""

from fastapi import APIRouter, Response

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import CatalogPrincipal, FeedsDep
from trooply.feeds.schemas import FeedIn, FeedList, FeedOut, FeedPatch, FeedSyncOut

router = APIRouter(prefix="/v1/feeds", tags=["feeds"], route_class=StrictJsonRoute)


@router.post("", status_code=201, response_model=FeedOut)
def create_feed(feed: FeedIn, principal: CatalogPrincipal, feeds: FeedsDep):
    """Registers the feed and starts its first sync."""
    return feeds.create(principal.tenant_id, feed)


@router.get("", response_model=FeedList)
def list_feeds(principal: CatalogPrincipal, feeds: FeedsDep):
    """Every feed with its latest sync."""
    return feeds.list(principal.tenant_id)


@router.get("/{feed_id}", response_model=FeedOut)
def get_feed(feed_id: str, principal: CatalogPrincipal, feeds: FeedsDep):
    """The feed with its last syncs' reports, newest first."""
    return feeds.get(principal.tenant_id, feed_id)


@router.patch("/{feed_id}", response_model=FeedOut)
def patch_feed(feed_id: str, patch: FeedPatch, principal: CatalogPrincipal, feeds: FeedsDep):
    return feeds.patch(principal.tenant_id, feed_id, patch)


@router.delete("/{feed_id}", status_code=204)
def delete_feed(feed_id: str, principal: CatalogPrincipal, feeds: FeedsDep) -> Response:
    """The feed and its reports; the products it brought stay in the catalogue."""
    feeds.delete(principal.tenant_id, feed_id)
    return Response(status_code=204)


@router.post("/{feed_id}/sync", status_code=202, response_model=FeedSyncOut)
def sync_feed(feed_id: str, principal: CatalogPrincipal, feeds: FeedsDep):
    """Queues a sync; while one is queued or running, that one is answered."""
    return feeds.start_sync(principal.tenant_id, feed_id)
