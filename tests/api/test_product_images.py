"""Several images per product through the API, on both engines: input, caps, failed extras, PATCH fetching only
what changed, and search naming the image that matched."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from qdrant_client import QdrantClient

import trooply.index.server as server_module
from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.feed_server import FeedServer
from tests.support.image_server import ImageServer
from tests.support.images import product_png, solid_png
from trooply.api.app import create_app
from trooply.tenancy.service import TenantCredentials

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")

VIEWS = {"/front.png": product_png("shoe", (200, 30, 30)), "/side.png": product_png("bag", (30, 30, 200)),
         "/back.png": product_png("lamp", (30, 160, 40)), "/other.png": product_png("shirt", (240, 200, 0)),
         "/new.png": product_png("watch", (90, 0, 120))}


class Shop:
    def __init__(self, client: TestClient, server: ImageServer, keys: TenantCredentials) -> None:
        self.client, self.server, self.keys = client, server, keys

    def post(self, *products: dict[str, Any], status: int = 202) -> dict[str, Any]:
        response = self.client.post("/v1/products", json={"products": list(products)},
                                    headers=auth(self.keys.secret_key))
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        if status == 202 and body["job_id"]:
            wait_for_job(self.client, self.keys.secret_key, body["job_id"])
        return body

    def product(self, product_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/products/{product_id}", headers=auth(self.keys.secret_key))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def url(self, path: str) -> str:
        return self.server.url(path)


@pytest.fixture(params=["edge", "server"])
def shop(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    overrides: dict[str, Any] = {}
    if request.param == "server":  # the server engine's adapter on qdrant-client's in-memory mode
        memory = QdrantClient(":memory:")
        monkeypatch.setattr(server_module, "QdrantClient", lambda **_: memory)
        overrides["qdrant_url"] = "http://127.0.0.1:9"
    with TestClient(create_app(make_settings(tmp_path, **overrides))) as client, ImageServer() as server:
        for path, data in VIEWS.items():
            server.add_image(path, data)
        yield Shop(client, server, new_tenant(client, plan="pro"))


def test_every_image_is_kept_main_first_and_the_product_is_indexed(shop: Shop) -> None:
    images = [shop.url("/front.png"), shop.url("/side.png"), shop.url("/back.png")]
    shop.post({"id": "shoe", "images": images}, {"id": "lamp", "image_url": shop.url("/other.png"),
                                                 "images": [shop.url("/back.png"), shop.url("/other.png")]})
    shoe = shop.product("shoe")
    assert (shoe["status"], shoe["image_url"], shoe["images"], shoe["image_errors"]) == (
        "indexed", images[0], images, [])
    lamp = shop.product("lamp")  # image_url is the main image, first; the list holds it once
    assert lamp["images"] == [shop.url("/other.png"), shop.url("/back.png")]
    single = shop.post({"id": "one", "image_url": shop.url("/front.png")})
    assert single["accepted"] == 1 and shop.product("one")["images"] == [shop.url("/front.png")]


def test_a_product_over_its_plans_image_cap_is_refused_naming_product_and_field(shop: Shop) -> None:
    free = new_tenant(shop.client, "small", plan="free")
    four = [shop.url(f"/{i}.png") for i in range(4)]
    response = shop.client.post("/v1/products", json={"products": [{"id": "p1", "images": four}]},
                                headers=auth(free.secret_key))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "too_many_images" and "'p1'" in error["message"]
    assert error["details"][0]["error"]["field"] == "images"
    mixed = shop.client.post("/v1/products", json={"products": [{"id": "p1", "images": four},
                                                                {"id": "p2", "images": four[:3]}]},
                             headers=auth(free.secret_key)).json()
    assert [(p["id"], p["status"]) for p in mixed["products"]] == [("p1", "rejected"), ("p2", "pending")]


def test_a_failed_extra_image_is_listed_and_never_fails_the_product(shop: Shop) -> None:
    shop.server.add_status("/gone.png", 404)
    shop.post({"id": "shoe", "images": [shop.url("/front.png"), shop.url("/gone.png"), shop.url("/side.png")]})
    shoe = shop.product("shoe")
    assert shoe["status"] == "indexed"
    assert shoe["image_errors"] == [{"url": shop.url("/gone.png"), "code": "image_not_found"}]


def test_an_extra_image_failing_for_a_moment_is_retried_and_its_error_cleared(shop: Shop) -> None:
    shop.server.add_flaky("/flaky.png", 1, 503, solid_png(60, 60, (10, 200, 10)))
    shop.post({"id": "shoe", "images": [shop.url("/front.png"), shop.url("/flaky.png")]})
    shoe = shop.product("shoe")
    assert (shoe["status"], shoe["image_errors"]) == ("indexed", [])
    assert shop.server.hits("/flaky.png") == 2


def test_patching_the_image_list_fetches_only_the_changed_urls(shop: Shop) -> None:
    shop.post({"id": "shoe", "images": [shop.url("/front.png"), shop.url("/side.png"), shop.url("/back.png")]})
    before = {path: shop.server.hits(path) for path in VIEWS}
    images = [shop.url("/front.png"), shop.url("/new.png"), shop.url("/back.png")]
    response = shop.client.patch("/v1/products/shoe", json={"images": images}, headers=auth(shop.keys.secret_key))
    assert response.status_code == 200, response.text
    wait_until_indexed(shop, "shoe")
    fetched = {path: shop.server.hits(path) - before[path] for path in VIEWS}
    assert fetched == {"/front.png": 0, "/side.png": 0, "/back.png": 0, "/other.png": 0, "/new.png": 1}
    assert shop.product("shoe")["images"] == images


def test_a_patch_beyond_the_cap_is_refused(shop: Shop) -> None:
    shop.post({"id": "shoe", "image_url": shop.url("/front.png")})
    eleven = [shop.url(f"/{i}.png") for i in range(11)]
    response = shop.client.patch("/v1/products/shoe", json={"images": eleven}, headers=auth(shop.keys.secret_key))
    assert response.status_code == 422 and response.json()["error"]["code"] == "too_many_images"


def wait_until_indexed(shop: Shop, product_id: str) -> None:
    jobs = shop.client.get("/v1/jobs", headers=auth(shop.keys.secret_key)).json()["jobs"]
    for job in jobs:
        wait_for_job(shop.client, shop.keys.secret_key, job["job_id"])
    assert shop.product(product_id)["status"] == "indexed"


def search(shop: Shop, mode: str, **body: Any) -> list[dict[str, Any]]:
    response = shop.client.post(f"/v1/search/{mode}", json={"limit": 10, "threshold": 0, **body},
                                headers=auth(shop.keys.publishable_key))
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def test_a_photo_of_any_view_finds_the_product_once_naming_the_image_it_matched(shop: Shop) -> None:
    images = [shop.url("/front.png"), shop.url("/side.png"), shop.url("/back.png")]
    shop.post({"id": "shoe", "images": images}, {"id": "shirt", "image_url": shop.url("/other.png")})
    for mode, body in (("url", {"image_url": shop.url("/side.png")}),
                       ("crop", {"image_url": shop.url("/side.png"), "bbox": [0, 0, 240, 240]}),
                       ("multi", {"image_urls": [shop.url("/side.png"), shop.url("/side.png")]}),
                       ("fusion", {"image_url": shop.url("/side.png"), "text": "thing", "image_weight": 1.0})):
        results = search(shop, mode, **body)
        ids = [result["id"] for result in results]
        assert sorted(ids) == ["shirt", "shoe"], mode  # the shoe once, though three of its images are near
        assert results[0]["id"] == "shoe", mode
        assert results[0]["matched_image"] == {"url": images[1], "position": 1}, mode
        # The colour signal is the side view's own (the very image the query is): as close as colours get.
        assert results[0]["_match_breakdown"]["signals"]["colour"] >= 0.95, mode
    (back,) = [r for r in search(shop, "url", image_url=shop.url("/back.png")) if r["id"] == "shoe"]
    assert back["matched_image"] == {"url": images[2], "position": 2}
    shirt = next(r for r in search(shop, "text", query="thing") if r["id"] == "shirt")
    assert shirt["matched_image"] == {"url": shop.url("/other.png"), "position": 0}


def test_a_feeds_changed_image_list_fetches_only_the_changed_images(tmp_path: Path) -> None:
    def feed(extras: list[str]) -> str:
        links = "".join(f"<g:additional_image_link>{server.url(path)}</g:additional_image_link>" for path in extras)
        return ('<?xml version="1.0"?><rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel><item>'
                f"<g:id>shoe</g:id><g:title>Shoe</g:title><g:image_link>{server.url('/front.png')}</g:image_link>"
                f"{links}</item></channel></rss>")

    with TestClient(create_app(make_settings(tmp_path))) as client, ImageServer() as server, FeedServer() as feeds:
        for path, data in VIEWS.items():
            server.add_image(path, data)
        keys = new_tenant(client)  # free: 3 images a product
        shop = Shop(client, server, keys)
        feeds.publish(feed(["/side.png", "/back.png", "/other.png"]))
        created = client.post("/v1/feeds", headers=auth(keys.secret_key),
                              json={"url": feeds.url(), "schedule": "manual"})
        assert created.status_code == 201, created.text
        feed_id = created.json()["id"]
        wait_for_syncs(shop, feed_id, 1)
        assert shop.product("shoe")["images"] == [server.url(p) for p in ("/front.png", "/side.png", "/back.png")]
        feeds.publish(feed(["/new.png", "/back.png"]))
        assert client.post(f"/v1/feeds/{feed_id}/sync", headers=auth(keys.secret_key)).status_code == 202
        wait_for_syncs(shop, feed_id, 2)
        assert shop.product("shoe")["images"] == [server.url(p) for p in ("/front.png", "/new.png", "/back.png")]
        assert {path: server.hits(path) for path in VIEWS} == {"/front.png": 1, "/side.png": 1, "/back.png": 1,
                                                               "/other.png": 0, "/new.png": 1}


def wait_for_syncs(shop: Shop, feed_id: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        feed = shop.client.get(f"/v1/feeds/{feed_id}", headers=auth(shop.keys.secret_key)).json()
        finished = [sync for sync in feed["syncs"] if sync["status"] in ("completed", "failed")]
        if len(finished) >= count and not feed["syncing"]:
            for job_id in feed["syncs"][0]["jobs"]:
                wait_for_job(shop.client, shop.keys.secret_key, job_id)
            return
        time.sleep(0.05)
    raise AssertionError(f"feed {feed_id} did not finish {count} syncs")


def test_similar_compares_every_image_of_the_product_and_leaves_it_out(shop: Shop) -> None:
    images = [shop.url("/front.png"), shop.url("/side.png"), shop.url("/back.png")]
    shop.post({"id": "shoe", "images": images}, {"id": "twin", "image_url": shop.url("/back.png")},
              {"id": "shirt", "image_url": shop.url("/other.png")})
    results = search(shop, "similar", product_id="shoe")
    assert sorted(r["id"] for r in results) == ["shirt", "twin"]  # itself left out, each once
    # Through the shoe's back view, the very same image: the top visual signal. (Not always the top result: the
    # colour signal compares the candidate's matched image with the shoe's main image, red here.)
    by_id = {r["id"]: r["_match_breakdown"]["signals"]["clip"] for r in results}
    assert by_id["twin"] == 1.0 > by_id["shirt"]
    back = search(shop, "similar", product_id="twin")[0]
    assert (back["id"], back["matched_image"]) == ("shoe", {"url": images[2], "position": 2})


def test_skip_unchanged_compares_the_whole_image_list(shop: Shop) -> None:
    images = [shop.url("/front.png"), shop.url("/side.png")]
    shop.post({"id": "shoe", "images": images})

    def resend(images: list[str]) -> str:
        response = shop.client.post("/v1/products?skip_unchanged=true", json={"id": "shoe", "images": images},
                                    headers=auth(shop.keys.secret_key))
        assert response.status_code == 202, response.text
        return str(response.json()["products"][0]["status"])

    assert resend(images) == "unchanged"
    assert resend([images[0], shop.url("/back.png")]) == "pending"  # same main image, another second one


def test_an_import_reports_rows_over_the_image_cap_and_a_feed_keeps_the_first_images(shop: Shop) -> None:
    free = new_tenant(shop.client, "small", plan="free")
    key = auth(free.secret_key)
    four = "|".join(shop.url(p) for p in ("/front.png", "/side.png", "/back.png", "/other.png"))
    upload = {"file": ("catalog.csv", f"id,images\nshoe,{four}\n".encode(), "text/csv")}
    report = shop.client.post("/v1/imports", files=upload, headers=key)
    assert report.status_code == 202, report.text
    (rejected,) = report.json()["rejected"]
    assert (rejected["line"], rejected["product_id"], rejected["code"], rejected["field"]) == (
        2, "shoe", "too_many_images", "images")
    links = ",".join(shop.url(p) for p in ("/side.png", "/back.png", "/other.png"))
    tsv = f"id\ttitle\timage_link\tadditional_image_link\nshoe\tShoe\t{shop.url('/front.png')}\t{links}\n"
    feed = shop.client.post("/v1/imports", files={"file": ("feed.tsv", tsv.encode(), "text/plain")},
                            data={"format": "google_tsv"}, headers=key).json()
    assert feed["accepted"] == 1 and feed["rejected"] == []
    for job_id in feed["jobs"]:
        wait_for_job(shop.client, free.secret_key, job_id)
    stored = shop.client.get("/v1/products/shoe", headers=key).json()
    assert stored["images"] == [shop.url(p) for p in ("/front.png", "/side.png", "/back.png")]
