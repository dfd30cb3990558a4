"""The feeds API's shapes: a feed as registered, and its syncs' reports."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trooply.vision.fetch import image_url_problem

FeedFormat = Literal["auto", "google_xml", "google_tsv", "shopify_csv", "csv", "jsonl"]
# typing caches `Literal[...] | None` by its values, not their order: written out in the order the import format's
# own `| None` (catalog/schemas.py) gives FeedPatch's schema, so /openapi.json does not depend on import order.
_FeedFormatPatch = Literal["csv", "jsonl", "google_xml", "google_tsv", "shopify_csv", "auto"]
Schedule = Literal["manual", "hourly", "daily"]


def _fetchable(value: str | None) -> str | None:
    if value is not None and (problem := image_url_problem(value)) is not None:
        raise ValueError(problem.replace("image URL", "the feed URL"))
    return value


class FeedIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    url: str = Field(min_length=1, max_length=2048, description="where the feed is published (http or https)")
    format: FeedFormat = Field("auto", description="auto reads it from the feed's first bytes")
    schedule: Schedule = Field("daily", description="manual syncs only on POST /v1/feeds/{id}/sync")
    delete_missing: bool = Field(False, description="delete the products that left the feed")

    _url_is_http = field_validator("url")(_fetchable)


class FeedPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    url: str | None = Field(None, min_length=1, max_length=2048)
    format: _FeedFormatPatch | None = None
    schedule: Schedule | None = None
    delete_missing: bool | None = None

    _url_is_http = field_validator("url")(_fetchable)


class RejectedItemOut(BaseModel):
    line: int = Field(description="the row's line (CSV, TSV, JSONL), or the item's number in an XML feed")
    product_id: str | None
    code: str
    message: str
    field: str | None


class SyncCounts(BaseModel):
    added: int = 0
    updated: int = Field(0, description="stored products that changed: metadata only, or their image")
    images_changed: int = Field(0, description="of `updated`, those whose image changed: fetched and encoded again")
    unchanged: int = 0
    deleted: int = 0
    kept_missing: int = Field(0, description="products that left the feed but were not deleted: more than "
                              "TROOPLY_FEED_MAX_DELETE_SHARE of the feed left at once (see the sync's note)")
    rejected: int = Field(0, description="items that cannot be mapped to a product")
    failed: int = Field(0, description="products refused while syncing (quota) or failed at ingest (image fetch, …)")


class FeedSyncOut(BaseModel):
    sync_id: str
    status: str = Field(description="pending, running, completed or failed")
    trigger: str = Field(description="created, manual or schedule")
    not_modified: bool = Field(description="the feed was unchanged (304, or the same bytes): nothing to do")
    counts: SyncCounts
    failed_by_code: dict[str, int]
    rejected: list[RejectedItemOut] = Field(description="the first 1,000 rejected items")
    jobs: list[str] = Field(description="the ingest jobs of added and re-imaged products (GET /v1/jobs/{id})")
    bytes: int
    duration_s: float | None
    note: str | None = None
    error: dict[str, Any] | None = None
    created_at: datetime
    finished_at: datetime | None


class FeedOut(BaseModel):
    id: str
    url: str
    format: str
    schedule: str
    delete_missing: bool
    syncing: bool = Field(description="a sync is queued or running")
    next_sync_at: datetime | None
    created_at: datetime
    syncs: list[FeedSyncOut] = Field(description="the latest syncs, newest first")


class FeedList(BaseModel):
    feeds: list[FeedOut]
