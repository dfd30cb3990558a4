"""`trooply feeds list|add|sync`: a running server's catalogue feeds through its public API and the tenant's
secret key (the server downloads and syncs; this command asks and reports), one JSON object a line."""

import time
from collections.abc import Callable
from typing import Any

from trooply.errors import TrooplyError

Call = Callable[..., dict[str, Any]]  # (method, path, **httpx arguments) -> the JSON answer
FINISHED = ("completed", "failed")


def list_feeds(call: Call) -> list[dict[str, Any]]:
    return call("GET", "/v1/feeds")["feeds"]


def add_feed(call: Call, url: str, fmt: str, schedule: str, delete_missing: bool) -> dict[str, Any]:
    """Registers the feed; the server starts its first sync."""
    return call("POST", "/v1/feeds", json={"url": url, "format": fmt, "schedule": schedule,
                                           "delete_missing": delete_missing})


def sync_feed(call: Call, feed_id: str, wait: bool, poll_s: float = 1.0,
              on_wait: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Starts a sync (or answers the one running) and, with `wait`, follows it to its end: its report."""
    sync = call("POST", f"/v1/feeds/{feed_id}/sync")
    while wait and sync["status"] not in FINISHED:
        time.sleep(poll_s)
        feed = call("GET", f"/v1/feeds/{feed_id}")
        listed = [s for s in feed["syncs"] if s["sync_id"] == sync["sync_id"]]
        sync = listed[0] if listed else _gone(sync["sync_id"])
        if on_wait is not None:
            on_wait(sync)
    return sync


def _gone(sync_id: str) -> dict[str, Any]:
    raise TrooplyError(f"the sync {sync_id} is no longer listed (the feed was deleted?)", code="sync_not_found")
