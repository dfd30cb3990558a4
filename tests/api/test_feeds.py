"""Feeds kept in sync, against a feed and images served by real 127.0.0.1 servers: a sync adds, updates (metadata
only, or the image), skips and deletes; an unchanged feed is a conditional-GET no-op; failures carry codes;
schedules run on the embedded thread and are wired for Celery beat."""

import gzip
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.feed_server import FeedServer
from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from trooply.api.app import create_app
from trooply.db import utcnow
from trooply.feeds.models import Feed
from trooply.tenancy.service import TenantCredentials

COLOURS = {"a": (200, 30, 35), "b": (20, 30, 80), "c": (30, 160, 60), "c2": (240, 200, 20), "d": (90, 90, 90),
           "e": (250, 120, 0)}


@dataclass
class Shop:
    client: TestClient
    tenant: TenantCredentials
    images: ImageServer
    feed: FeedServer

    @property
    def key(self) -> dict[str, str]:
        return auth(self.tenant.secret_key)


def xml(images: ImageServer, items: list[dict[str, str]]) -> str:
    body = "".join("<item>" + "".join(f"<g:{name}>{value}</g:{name}>" for name, value in item.items()) + "</item>"
                   for item in items)
    return (f'<?xml version="1.0"?><rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel>'
            f"{body}</channel></rss>").replace("IMG:", images.url("/"))


def item(product_id: str, image: str | None = None, price: str = "10.00 USD", **fields: str) -> dict[str, str]:
    return {"id": product_id, "title": f"Product {product_id}", "image_link": f"IMG:{image or product_id}.png",
            "price": price, "availability": "in_stock", **fields}


@pytest.fixture
def shop(tmp_path) -> Iterator[Shop]:
    settings = make_settings(tmp_path, feed_schedule_check_seconds=0.2)
    with TestClient(create_app(settings)) as client, ImageServer() as images, FeedServer() as feed:
        for name, rgb in COLOURS.items():
            images.add_image(f"/{name}.png", solid_png(40, 40, rgb))
        yield Shop(client, new_tenant(client), images, feed)


def synced(shop: Shop, feed_id: str, count: int = 1, timeout: float = 60.0) -> dict:
    """The feed once it has `count` finished syncs and their ingest jobs are done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        feed = shop.client.get(f"/v1/feeds/{feed_id}", headers=shop.key).json()
        finished = [sync for sync in feed["syncs"] if sync["status"] in ("completed", "failed")]
        if len(finished) >= count and not feed["syncing"]:
            for job_id in feed["syncs"][0]["jobs"]:
                wait_for_job(shop.client, shop.tenant.secret_key, job_id)
            return shop.client.get(f"/v1/feeds/{feed_id}", headers=shop.key).json()
        time.sleep(0.05)
    raise AssertionError(f"feed {feed_id} did not finish {count} syncs: {feed}")


def sync_now(shop: Shop, feed_id: str, count: int) -> dict:
    answer = shop.client.post(f"/v1/feeds/{feed_id}/sync", headers=shop.key)
    assert answer.status_code == 202, answer.text
    return synced(shop, feed_id, count)["syncs"][0]


def counts(sync: dict) -> dict[str, int]:
    return {name: value for name, value in sync["counts"].items() if value}


def test_a_sync_adds_updates_skips_and_deletes(shop: Shop) -> None:
    shop.feed.publish(xml(shop.images, [item("a"), item("b"), item("c"), item("d")]))
    created = shop.client.post("/v1/feeds", headers=shop.key, json={
        "url": shop.feed.url(), "schedule": "manual", "delete_missing": True})
    assert created.status_code == 201, created.text
    feed_id = created.json()["id"]
    first = synced(shop, feed_id)["syncs"][0]
    assert (first["status"], first["trigger"], counts(first)) == ("completed", "created", {"added": 4})
    assert first["bytes"] > 0 and first["duration_s"] is not None
    assert [shop.images.hits(f"/{name}.png") for name in "abcd"] == [1, 1, 1, 1]

    # b: a new price and title (metadata only); c: a new image; d: gone; e: new; a: as it was; one bad item.
    shop.feed.publish(xml(shop.images, [item("a"), item("b", price="120.00 USD", title="Better b"),
                                        item("c", image="c2"), item("e"), item("bad", price="lots")]))
    second = sync_now(shop, feed_id, 2)
    assert counts(second) == {"added": 1, "updated": 2, "images_changed": 1, "unchanged": 1, "deleted": 1,
                              "rejected": 1}
    assert second["rejected"] == [{"line": 5, "product_id": "bad", "code": "validation_error",
                                   "message": "price: 'lots' is not a price such as '15.00 USD'", "field": "price"}]
    # Only the changed image and the new product's were fetched.
    assert {name: shop.images.hits(f"/{name}.png") for name in ("a", "b", "c", "c2", "e")} == \
        {"a": 1, "b": 1, "c": 1, "c2": 1, "e": 1}
    b = shop.client.get("/v1/products/b", headers=shop.key).json()
    assert (b["status"], b["metadata"]["price"], b["metadata"]["title"]) == ("indexed", 120.0, "Better b")
    assert shop.client.get("/v1/products/d", headers=shop.key).status_code == 404
    assert shop.client.get("/v1/products/c", headers=shop.key).json()["image_url"].endswith("/c2.png")
    # The index payload follows the metadata: a price filter finds b at its new price.
    found = shop.client.post("/v1/search/text", headers=auth(shop.tenant.publishable_key), json={
        "query": "product", "filters": {"price": {"gte": 100}}}).json()
    assert [hit["id"] for hit in found["results"]] == ["b"]


def test_an_unchanged_feed_is_a_conditional_get_no_op(shop: Shop) -> None:
    shop.feed.publish(xml(shop.images, [item("a"), item("b")]))
    feed_id = shop.client.post("/v1/feeds", headers=shop.key, json={"url": shop.feed.url()}).json()["id"]
    synced(shop, feed_id)
    again = sync_now(shop, feed_id, 2)
    assert (again["status"], again["not_modified"], counts(again), again["bytes"]) == ("completed", True, {}, 0)
    assert "304" in again["note"] and shop.feed.answers[304] == 1
    # A changed feed is read again; then the server without validators sending the same bytes is a no-op too.
    shop.feed.publish(xml(shop.images, [item("a"), item("b", price="11.00 USD")]))
    assert counts(sync_now(shop, feed_id, 3)) == {"updated": 1, "unchanged": 1}
    shop.feed.validators = False
    same = sync_now(shop, feed_id, 4)
    assert (same["not_modified"], same["note"]) == (True, "the feed's bytes are those of the last sync")


def test_failed_syncs_carry_a_code_and_the_catalogue_is_left_alone(tmp_path) -> None:
    settings = make_settings(tmp_path, feed_max_bytes=2048)
    with TestClient(create_app(settings)) as client, ImageServer() as images, FeedServer() as feed:
        images.add_image("/a.png", solid_png(40, 40))
        shop = Shop(client, new_tenant(client), images, feed)
        feed.publish(xml(images, [item("a")]))
        feed_id = client.post("/v1/feeds", headers=shop.key, json={"url": feed.url(), "delete_missing": True,
                                                                   "schedule": "manual"}).json()["id"]
        assert counts(synced(shop, feed_id)["syncs"][0]) == {"added": 1}
        feed.publish(xml(images, [item(f"p{n}") for n in range(40)]))  # over 2 KiB
        too_large = sync_now(shop, feed_id, 2)
        assert (too_large["status"], too_large["error"]["code"]) == ("failed", "feed_too_large")
        feed.publish("<html><body>Not found</body></html>")
        not_a_feed = sync_now(shop, feed_id, 3)
        assert (not_a_feed["status"], not_a_feed["error"]["code"]) == ("failed", "invalid_feed")
        feed.publish('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
                     '<rss><channel><item><id>&b;</id></item></channel></rss>')
        bomb = sync_now(shop, feed_id, 4)
        assert (bomb["status"], bomb["error"]["code"]) == ("failed", "xml_entities_forbidden")
        missing = client.post("/v1/feeds", headers=shop.key, json={"url": images.url("/nope.xml")}).json()
        assert synced(shop, missing["id"])["syncs"][0]["error"] == {
            "code": "feed_http_error", "message": "the feed URL answered HTTP 404"}
        # Nothing was deleted by the failed syncs.
        assert client.get("/v1/products/a", headers=shop.key).status_code == 200


def test_feeds_are_the_secret_keys_and_bad_input_is_a_4xx(shop: Shop) -> None:
    key = shop.key
    url = "https://x.example/f"
    for body, field in (({"url": "ftp://example.com/feed.xml"}, "url"), ({"url": url, "format": "xls"}, "format"),
                        ({"url": url, "schedule": "weekly"}, "schedule"), ({"url": url, "extra": 1}, "extra")):
        answer = shop.client.post("/v1/feeds", headers=key, json=body)
        assert answer.status_code == 422 and field in answer.text, (body, answer.text)
    assert shop.client.post("/v1/feeds", headers=auth(shop.tenant.publishable_key),
                            json={"url": shop.feed.url()}).status_code == 403
    for method, path in (("GET", "/v1/feeds/feed_nope"), ("DELETE", "/v1/feeds/feed_nope"),
                         ("POST", "/v1/feeds/feed_nope/sync")):
        answer = shop.client.request(method, path, headers=key)
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "feed_not_found")
    shop.feed.publish(xml(shop.images, [item("a")]))
    feed_id = shop.client.post("/v1/feeds", headers=key,
                               json={"url": shop.feed.url(), "schedule": "manual"}).json()["id"]
    other = new_tenant(shop.client, "other")
    assert shop.client.get(f"/v1/feeds/{feed_id}", headers=auth(other.secret_key)).status_code == 404
    patched = shop.client.patch(f"/v1/feeds/{feed_id}", headers=key, json={"schedule": "daily"}).json()
    assert patched["schedule"] == "daily" and patched["next_sync_at"] is not None
    assert [feed["id"] for feed in shop.client.get("/v1/feeds", headers=key).json()["feeds"]] == [feed_id]
    synced(shop, feed_id)
    assert shop.client.delete(f"/v1/feeds/{feed_id}", headers=key).status_code == 204
    assert shop.client.get("/v1/feeds", headers=key).json() == {"feeds": []}
    assert shop.client.get("/v1/products/a", headers=key).status_code == 200  # its products stay


def test_one_sync_per_feed_at_a_time(shop: Shop) -> None:
    shop.feed.publish(xml(shop.images, [item("a")]))
    shop.feed.delay_s = 1.0
    feed_id = shop.client.post("/v1/feeds", headers=shop.key, json={"url": shop.feed.url()}).json()["id"]
    running = shop.client.get(f"/v1/feeds/{feed_id}", headers=shop.key).json()
    asked = shop.client.post(f"/v1/feeds/{feed_id}/sync", headers=shop.key)
    assert asked.status_code == 202 and running["syncing"]
    assert asked.json()["sync_id"] == running["syncs"][0]["sync_id"]  # the running one answers
    feed = synced(shop, feed_id)
    assert len(feed["syncs"]) == 1 and shop.feed.answers[200] == 1


def test_a_feed_deleted_during_its_sync_stops_it(shop: Shop, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trooply.feeds")
    shop.feed.publish(xml(shop.images, [item("a"), item("b")]))
    shop.feed.hold.clear()  # the sync's download waits, so the feed is deleted during the sync, not before it starts
    feed_id = shop.client.post("/v1/feeds", headers=shop.key, json={"url": shop.feed.url()}).json()["id"]
    wait_until(lambda: shop.feed.requests >= 1, "the sync's download to start")
    assert shop.client.delete(f"/v1/feeds/{feed_id}", headers=shop.key).status_code == 204
    shop.feed.hold.set()
    # the download ends, then the first batch finds the feed gone
    wait_until(lambda: "was deleted during its sync" in caplog.text, "the sync to stop")
    assert shop.client.get("/v1/products", headers=shop.key).json()["products"] == []
    assert "failed" not in caplog.text


def test_a_shopify_export_is_read_as_such_and_its_variants_synced(shop: Shop) -> None:
    header = ("Handle,Title,Body (HTML),Vendor,Type,Option1 Name,Option1 Value,Variant SKU,Variant Price,Image Src,"
              "Status\n")
    rows = (f"tee,Tee,<p>Soft</p>,Acme,Shirts,Size,S,TEE-S,20,{shop.images.url('/a.png')},active\n"
            f"tee,,,,,,M,TEE-M,22,{shop.images.url('/b.png')},\n")
    shop.feed.publish(header + rows)
    feed_id = shop.client.post("/v1/feeds", headers=shop.key, json={"url": shop.feed.url()}).json()["id"]
    assert counts(synced(shop, feed_id)["syncs"][0]) == {"added": 2}
    medium = shop.client.get("/v1/products/TEE-M", headers=shop.key).json()
    assert (medium["status"], medium["image_url"], medium["metadata"]["attributes"]) == (
        "indexed", shop.images.url("/a.png"), {"group_id": "tee", "size": "M"})


def test_a_due_scheduled_feed_is_synced_by_the_embedded_thread(shop: Shop) -> None:
    shop.feed.publish(xml(shop.images, [item("a")]))
    feed_id = shop.client.post("/v1/feeds", headers=shop.key, json={"url": shop.feed.url(),
                                                                    "schedule": "hourly"}).json()["id"]
    first = synced(shop, feed_id)
    assert first["next_sync_at"] is not None and len(first["syncs"]) == 1  # an hour away: nothing more yet
    shop.feed.publish(xml(shop.images, [item("a"), item("b")]))
    container = shop.client.app.state.container
    with container.db.session() as session:  # the hour has passed
        session.get(Feed, feed_id).next_sync_at = utcnow() - timedelta(seconds=1)
    scheduled = synced(shop, feed_id, 2)["syncs"][0]
    assert (scheduled["trigger"], counts(scheduled)) == ("schedule", {"added": 1, "unchanged": 1})


def test_celery_beat_sends_the_due_feeds_task() -> None:
    import workers.tasks  # noqa: F401  (registers the tasks)
    from trooply.tasks.names import FEED_SYNC_TASK, FEEDS_DUE_TASK
    from workers.celery_app import app

    entry = next(entry for entry in app.conf.beat_schedule.values() if entry["task"] == FEEDS_DUE_TASK)
    assert entry["schedule"] == 60.0
    assert {FEEDS_DUE_TASK, FEED_SYNC_TASK} <= set(app.tasks)


def wait_until(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


CSV_UPLOAD = {"file": ("products.csv", "id,image_url\nz,https://cdn.example.com/z.jpg\n")}


def test_an_import_during_a_feed_sync_of_the_account_gets_the_busy_answer(shop: Shop) -> None:
    shop.feed.publish(xml(shop.images, [item("a")]))
    shop.feed.hold.clear()  # the sync's download waits: the sync is running
    feed_id = shop.client.post("/v1/feeds", headers=shop.key, json={"url": shop.feed.url()}).json()["id"]
    wait_until(lambda: shop.feed.requests == 1, "the sync never asked for the feed")
    busy = shop.client.post("/v1/imports", files=CSV_UPLOAD, headers=shop.key)
    assert (busy.status_code, busy.json()["error"]["code"]) == (429, "too_many_requests"), busy.text
    other = new_tenant(shop.client, "other")  # another account imports meanwhile
    assert shop.client.post("/v1/imports", files=CSV_UPLOAD, headers=auth(other.secret_key)).status_code == 202
    shop.feed.hold.set()
    assert counts(synced(shop, feed_id)["syncs"][0]) == {"added": 1}
    assert shop.client.post("/v1/imports", files=CSV_UPLOAD, headers=shop.key).status_code == 202


def test_a_feed_sync_waits_for_the_accounts_import_and_then_runs(shop: Shop) -> None:
    container = shop.client.app.state.container
    container.feeds.defer_s = 0.1
    shop.feed.publish(xml(shop.images, [item("a")]))
    with container.catalog.imports.held(shop.tenant.tenant_id):  # an import of the account is running
        feed_id = shop.client.post("/v1/feeds", headers=shop.key, json={"url": shop.feed.url()}).json()["id"]

        def waiting() -> bool:
            return "an import of the account" in (shop.client.get(
                f"/v1/feeds/{feed_id}", headers=shop.key).json()["syncs"][0]["note"] or "")
        wait_until(waiting, "the sync did not report that it waits for the import")
        time.sleep(0.3)  # several retries pass while the import holds the slot: none downloads the feed
        assert shop.feed.requests == 0
        assert shop.client.get(f"/v1/feeds/{feed_id}", headers=shop.key).json()["syncs"][0]["status"] == "pending"
    done = synced(shop, feed_id)["syncs"][0]
    assert (done["status"], counts(done), done["note"]) == ("completed", {"added": 1}, None)


def test_a_feed_that_suddenly_shrinks_deletes_nothing_and_says_why(shop: Shop) -> None:
    shop.feed.publish(xml(shop.images, [item("a"), item("b"), item("c"), item("d")]))
    feed_id = shop.client.post("/v1/feeds", headers=shop.key, json={
        "url": shop.feed.url(), "schedule": "manual", "delete_missing": True}).json()["id"]
    assert counts(synced(shop, feed_id)["syncs"][0]) == {"added": 4}
    shop.feed.publish(xml(shop.images, [item("a")]))  # 3 of 4 gone at once: more than the default half
    cut_short = sync_now(shop, feed_id, 2)
    assert (cut_short["status"], counts(cut_short)) == ("completed", {"unchanged": 1, "kept_missing": 3})
    assert cut_short["note"].startswith("3 of the feed's 4 products left it at once, more than "
                                        "TROOPLY_FEED_MAX_DELETE_SHARE (50%)")
    assert all(shop.client.get(f"/v1/products/{name}", headers=shop.key).status_code == 200 for name in "bcd")
    shop.feed.publish(xml(shop.images, [item("a"), item("b"), item("c")]))  # one of four left: within the share
    trimmed = sync_now(shop, feed_id, 3)
    assert (counts(trimmed), trimmed["note"]) == ({"unchanged": 3, "deleted": 1}, None)
    assert shop.client.get("/v1/products/d", headers=shop.key).status_code == 404


def test_a_gzip_file_feed_is_synced(shop: Shop) -> None:
    shop.feed.publish(gzip.compress(xml(shop.images, [item("a"), item("b")]).encode()))
    feed_id = shop.client.post("/v1/feeds", headers=shop.key, json={"url": shop.feed.url("/feed.xml.gz")}).json()["id"]
    assert counts(synced(shop, feed_id)["syncs"][0]) == {"added": 2}
