"""End to end through HTTP on the embedded shape, as a new user would: two tenants, 50 products each,
hostile images among them, then text / URL / upload search with filters and tenant isolation."""

import pytest

from tests.conftest import auth, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import huge_dimension_png, solid_png, two_halves_png
from tests.support.shop import on_server, post_catalogue
from trooply.tenancy.service import TenantCredentials

CATEGORIES = ("shoes", "bags")
HOSTILE = {
    "missing": "image_not_found",
    "slow": "fetch_timeout",
    "not-an-image": "unsupported_media_type",
    "huge": "image_too_large",
    "to-blocked": "blocked_address",
}


def product_image(tenant: str, i: int) -> bytes:
    shade = 40 + i * 4
    left = (shade, 255 - shade, (i * 37) % 256) if tenant == "a" else ((i * 53) % 256, shade, 255 - shade)
    return two_halves_png(96 + i % 5 * 16, 96, left, (255 - left[0], left[2], left[1]))


def catalog(tenant: str) -> list[dict]:
    """The tenant's 50 products; image URLs as paths on the image server."""
    products = []
    for i in range(50):
        products.append({
            "id": f"{tenant}-{i}", "image_url": f"/{tenant}/{i}.png", "title": f"Item {i}",
            "category": CATEGORIES[i % 2].upper() if i % 10 == 0 else CATEGORIES[i % 2],
            "brand": "Acme" if i < 25 else "Zenith", "price": float(10 + i), "in_stock": i % 3 != 0,
            "attributes": {"colour": "red" if i % 4 == 0 else "blue"},
        })
    return products


def returned(body: dict) -> list[str]:
    """Every product the search let through the pre-filter: ranked results plus those a hard gate dropped
    (with random test weights the zero-shot families are arbitrary, so gates may drop any of them)."""
    return [r["id"] for r in body["results"]] + body["gated"]


def hostile_routes(server: ImageServer) -> None:
    server.add_status("/missing.png", 404)
    server.add_slow("/slow.png", 2.5, solid_png(32, 32))
    server.add_image("/not-an-image.png", b"<html>definitely not a picture</html>", "image/png")
    server.add_image("/huge.png", huge_dimension_png(30000, 30000))
    server.add_redirect("/to-blocked.png", f"http://127.0.0.2:{server.port}/")
    server.add_flaky("/flaky.png", 2, 503, solid_png(40, 40, (0, 200, 0)))


@pytest.fixture(scope="module")
def shop(shop_factory):
    # One shop for the module (ingest takes seconds), which no test changes: see `own_tenant`.
    images = {f"/{name}/{i}.png": product_image(name, i) for name in ("a", "b") for i in range(50)}
    hostile = [{"id": f"hostile-{k}", "image_url": f"/{k}.png"} for k in HOSTILE]
    flaky = {"id": "a-flaky", "image_url": "/flaky.png", "brand": "Acme"}
    opened = shop_factory({"a": [*catalog("a"), *hostile, flaky], "b": catalog("b")}, images=images,
                          routes=hostile_routes)
    return opened.client, opened.server, opened.tenants, opened.jobs


@pytest.fixture
def own_tenant(shop) -> TenantCredentials:
    """A tenant holding a copy of ten of A's products, for a test that changes and deletes them."""
    client, server, _, _ = shop
    creds = new_tenant(client, "a-changes")
    job_id = post_catalogue(client, creds, on_server(catalog("a")[:10], server))
    wait_for_job(client, creds.secret_key, job_id)
    return creds


def test_jobs_report_good_products_indexed_and_hostile_ones_failed_with_codes(shop):
    client, server, tenants, jobs = shop
    assert jobs["b"]["counts"] == {"pending": 0, "indexed": 50, "failed": 0}
    assert jobs["a"]["counts"] == {"pending": 0, "indexed": 51, "failed": len(HOSTILE)}
    assert {e["product_id"]: e["code"] for e in jobs["a"]["errors"]} == {f"hostile-{k}": c for k, c in HOSTILE.items()}
    assert server.hits("/flaky.png") == 3, "a 503 is transient: retried with backoff until it succeeds"

    key = tenants["a"].secret_key
    failed = client.get("/v1/products", params={"status": "failed"}, headers=auth(key)).json()["products"]
    assert {p["id"]: p["error"]["code"] for p in failed} == {f"hostile-{k}": c for k, c in HOSTILE.items()}
    one = client.get("/v1/products/hostile-to-blocked", headers=auth(key)).json()
    assert one["status"] == "failed" and "127.0.0.2" in one["error"]["message"]
    assert client.get("/v1/products/a-3", headers=auth(key)).json()["status"] == "indexed"


def test_text_search_with_both_keys_stays_inside_the_tenant(shop):
    client, _, tenants, _ = shop
    for name, creds in tenants.items():
        for key in (creds.secret_key, creds.publishable_key):
            body = client.post("/v1/search/text", json={"query": "red leather handbag", "limit": 100},
                               headers=auth(key)).json()
            ids = returned(body)
            assert len(ids) == {"a": 51, "b": 50}[name] and all(i.startswith(f"{name}-") for i in ids)
            assert body["mode"] == "text" and body["search_id"].startswith("srch_")
            scores = [r["similarity_score"] for r in body["results"]]
            assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
            first = body["results"][0]
            assert 0 <= first["_match_breakdown"]["signals"]["clip"] <= 1
            assert first["explanation"]


@pytest.mark.parametrize("filters, holds", [
    ({"category": "shoes"}, lambda p: p["category"].lower() == "shoes"),
    ({"category": ["Bags"]}, lambda p: p["category"].lower() == "bags"),
    ({"price": {"gte": 20, "lte": 30}}, lambda p: 20 <= p["price"] <= 30),
    ({"in_stock": False}, lambda p: p["in_stock"] is False),
    ({"brand": {"in": ["zenith"]}, "attributes.colour": "red"},
     lambda p: p["brand"] == "Zenith" and p["attributes"]["colour"] == "red"),
    ({"brand": {"nin": ["Acme"]}}, lambda p: p["brand"] == "Zenith"),
])
def test_filters_hold_on_every_result(shop, filters, holds):
    client, _, tenants, _ = shop
    expected = [p for p in catalog("a") if holds(p)]
    body = client.post("/v1/search/text", json={"query": "anything", "limit": 100, "filters": filters},
                       headers=auth(tenants["a"].publishable_key)).json()
    assert sorted(returned(body)) == sorted(p["id"] for p in expected)
    assert all(holds(r["metadata"]) for r in body["results"])


def test_url_and_upload_search_find_the_identical_product_first(shop):
    client, server, tenants, _ = shop
    key = tenants["a"].publishable_key
    # Under its own family's profile an exact duplicate agrees on every signal: score 1.
    by_url = client.post("/v1/search/url", json={"image_url": server.url("/a/7.png"), "limit": 5,
                                                 "profile": "accessories"}, headers=auth(key)).json()
    assert by_url["results"][0]["id"] == "a-7" and by_url["results"][0]["similarity_score"] > 0.999
    upload = client.post("/v1/search/image", files={"file": ("x.bin", product_image("a", 12), "text/plain")},
                         data={"limit": "3", "filters": '{"category": "shoes"}', "profile": "footwear"},
                         headers=auth(key)).json()
    assert upload["mode"] == "image" and upload["results"][0]["id"] == "a-12"
    # Tenant B uploading A's exact image still only ever sees B's catalogue.
    other = client.post("/v1/search/image", files={"file": ("x.png", product_image("a", 12))},
                        data={"limit": "100"}, headers=auth(tenants["b"].publishable_key)).json()
    assert all(r["id"].startswith("b-") for r in other["results"])


def test_a_key_cannot_read_change_or_delete_another_tenants_products(shop):
    client, _, tenants, _ = shop
    b = auth(tenants["b"].secret_key)
    for response in (client.get("/v1/products/a-1", headers=b),
                     client.patch("/v1/products/a-1", json={"title": "mine"}, headers=b),
                     client.delete("/v1/products/a-1", headers=b)):
        assert response.status_code == 404 and response.json()["error"]["code"] == "product_not_found"
    assert client.get("/v1/products/a-1", headers=auth(tenants["a"].secret_key)).json()["metadata"]["title"] == "Item 1"
    jobs_of_a = client.get("/v1/products", headers=b).json()["products"]
    assert all(p["id"].startswith("b-") for p in jobs_of_a)


def test_patch_and_repost_update_metadata_without_re_encoding_and_delete_removes(shop, own_tenant):
    client, server, _, _ = shop
    key = auth(own_tenant.secret_key)
    encoder = client.app.state.container.encoder
    encoded_before = encoder.images_encoded

    patched = client.patch("/v1/products/a-5", json={"title": "Renamed", "category": "boots"}, headers=key)
    assert patched.status_code == 200 and patched.json()["metadata"]["title"] == "Renamed"
    hits = client.post("/v1/search/text", json={"query": "x", "filters": {"category": "boots"}, "profile": "footwear"},
                       headers=key).json()
    assert [(r["id"], r["metadata"]["title"]) for r in hits["results"]] == [("a-5", "Renamed")]

    repost = {"id": "a-6", "image_url": server.url("/a/6.png"), "title": "Reposted", "price": 999.0}
    job = client.post("/v1/products", json=repost, headers=key).json()["job_id"]
    assert wait_for_job(client, own_tenant.secret_key, job)["counts"]["indexed"] == 1
    # The family stays footwear (from the old category: the image did not change), so that profile keeps it.
    hits = client.post("/v1/search/text",
                       json={"query": "x", "filters": {"price": {"gte": 900}}, "profile": "footwear"},
                       headers=key).json()
    assert [(r["id"], r["metadata"]["title"]) for r in hits["results"]] == [("a-6", "Reposted")]
    stale = client.post("/v1/search/text", json={"query": "x", "filters": {"category": "shoes", "price": {"gte": 900}}},
                        headers=key).json()
    assert returned(stale) == [], "the re-post dropped the category, so it must stop matching"
    assert encoder.images_encoded == encoded_before, "unchanged image content must not be encoded again"

    server.add_image("/a/6-new.png", solid_png(50, 80, (1, 2, 3)))
    job = client.post("/v1/products", json={**repost, "image_url": server.url("/a/6-new.png")}, headers=key).json()
    wait_for_job(client, own_tenant.secret_key, job["job_id"])
    assert encoder.images_encoded == encoded_before + 1

    assert client.delete("/v1/products/a-6", headers=key).status_code == 204
    hits = client.post("/v1/search/text", json={"query": "x", "limit": 100}, headers=key).json()
    assert "a-6" not in returned(hits)
    assert client.get("/v1/products/a-6", headers=key).status_code == 404
