"""The duplicates API's shapes: one group shape for the immediate answer and for a scan's result."""

import base64
import binascii
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trooply.errors import InvalidRequest

DEFAULT_THRESHOLD, MIN_THRESHOLD = 0.97, 0.5


class ScanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    threshold: float = Field(DEFAULT_THRESHOLD, ge=MIN_THRESHOLD, le=1.0, description="cosine at which two "
                                                                                       "products are duplicates")


class PairImageOut(BaseModel):
    url: str | None
    position: int = Field(description="its place in the product's images (0: the main image)")


class DuplicatePairOut(BaseModel):
    a: str
    b: str
    similarity: float
    a_image: PairImageOut | None = Field(None, description="the image of `a` near-identical to one of `b`")
    b_image: PairImageOut | None = Field(None, description="that image of `b`")


class DuplicateGroupOut(BaseModel):
    products: list[str]
    max_similarity: float
    pairs: list[DuplicatePairOut] = Field(description="the linked pairs, closest first (each product's closest "
                                                      "duplicates, up to TROOPLY_DUPLICATES_MAX_NEIGHBOURS)")


class GroupPage(BaseModel):
    groups_total: int | None = None
    groups: list[DuplicateGroupOut] | None = None
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")


class DuplicatesOut(GroupPage):
    threshold: float
    products_scanned: int


class DuplicateScanOut(GroupPage):
    scan_id: str
    status: str = Field(description="pending, running, completed or failed; groups come with completed")
    threshold: float
    products_scanned: int
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


def page_of(groups: list[dict[str, Any]], limit: int, cursor: str | None) -> GroupPage:
    start = _offset(cursor)
    end = start + limit
    return GroupPage(groups_total=len(groups), groups=groups[start:end],
                     next_cursor=_cursor(end) if end < len(groups) else None)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"groups:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        label, _, number = text.partition(":")
        if label == "groups" and number.isdigit() and len(number) < 10:
            return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidRequest("cursor: not a cursor this endpoint returned", code="invalid_cursor",
                         details={"field": "cursor"})
