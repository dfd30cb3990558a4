"""Discovery through HTTP: similar products, variant grouping and diversity, the query reader, relaxed gates,
and catalogue duplicates (at once, as a scan, and from the CLI). Random weights: behaviour, never quality."""

import json
import shutil
import time

import pytest

from tests.conftest import auth, wait_for_job
from tests.support.images import solid_png, two_halves_png
from trooply.ranking.profiles import DEFAULT_PROFILES_DIR

SNEAKER = two_halves_png(90, 60, (200, 30, 35), (240, 240, 240))
VARIANT = solid_png(80, 80, (30, 60, 200))  # 35 identical pictures: one variant group, one duplicate group
OTHERS = {"b": solid_png(80, 80, (20, 180, 40)), "c": two_halves_png(80, 80, (250, 200, 0), (90, 0, 120))}
VARIANTS = [f"var-{i:02d}" for i in range(35)]


def product(pid: str, url: str, **fields) -> dict:
    return {"id": pid, "image_url": url, "category": "shoes", **fields}


@pytest.fixture(scope="module")
def shop(shop_factory):
    products = [product("sku-1", "/sneaker.png", price=89.0, brand="Acme", attributes={"group_id": "S-1"}),
                product("sku-1-copy", "/sneaker.png", price=60.0, brand="Copycat"),
                product("broken", "/gone.png")]
    products += [product(pid, "/variant.png", price=10.0 + i, in_stock=i % 2 == 0,
                         attributes={"group_id": "V-1"}) for i, pid in enumerate(VARIANTS)]
    products += [product(f"other-{name}", f"/{name}.png", price=5.0, category="sneakers",
                         attributes={"group_id": f"O-{name}"}) for name in OTHERS]
    images = {"/sneaker.png": SNEAKER, "/variant.png": VARIANT, **{f"/{name}.png": p for name, p in OTHERS.items()}}
    opened = shop_factory({"shop": products, "stranger": []}, images=images,
                          routes=lambda server: server.add_status("/gone.png", 404))
    return opened.client, opened.server, opened.tenants["shop"], opened.tenants["stranger"]


def post(client, path, key, **body):
    return client.post(path, json=body, headers=auth(key))


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def ids(body: dict) -> list[str]:
    return [r["id"] for r in body["results"]]


# Similar products


def test_similar_uses_the_stored_vector_leaves_the_product_out_and_finds_its_copy_first(shop):
    client, _, tenant, _ = shop
    encoder = client.app.state.container.encoder
    encoded = (encoder.images_encoded, encoder.texts_encoded)
    body = ok(post(client, "/v1/search/similar", tenant.publishable_key, product_id="sku-1", limit=5))
    assert body["mode"] == "similar" and "sku-1" not in ids(body) and body["profile_source"] == "product"
    assert ids(body)[0] == "sku-1-copy" and body["results"][0]["_match_breakdown"]["signals"]["clip"] == 1.0
    assert body["timings"]["model_ms"] == 0 and (encoder.images_encoded, encoder.texts_encoded) == encoded
    assert "aspect" in body["results"][0]["_match_breakdown"]["signals"], "the stored shape is the query's shape"
    assert body["results"][0]["explanation"].startswith("Close visual match")
    filtered = ok(post(client, "/v1/search/similar", tenant.publishable_key, product_id="sku-1",
                       filters={"category": "sneakers"}))
    assert set(ids(filtered)) == {"other-b", "other-c"}


def test_similar_refuses_unknown_foreign_failed_and_pending_products(shop):
    client, server, tenant, stranger = shop
    for key, pid in ((tenant.publishable_key, "nope"), (stranger.publishable_key, "sku-1")):
        response = post(client, "/v1/search/similar", key, product_id=pid)
        assert response.status_code == 404 and response.json()["error"]["code"] == "product_not_found"
    failed = post(client, "/v1/search/similar", tenant.publishable_key, product_id="broken")
    assert failed.status_code == 409 and failed.json()["error"]["code"] == "product_not_indexed"
    assert failed.json()["error"]["details"] == {"status": "failed"}
    server.add_slow("/slow.png", 2.5, SNEAKER)
    job = client.post("/v1/products", json=product("slow", server.url("/slow.png")), headers=auth(tenant.secret_key))
    pending = post(client, "/v1/search/similar", tenant.publishable_key, product_id="slow")
    assert pending.status_code == 409 and pending.json()["error"]["details"] == {"status": "pending"}
    wait_for_job(client, tenant.secret_key, job.json()["job_id"])
    for body, code in (({"product_id": ""}, "validation_error"), ({"product_id": 7}, "validation_error"),
                       ({"product_id": "sku-1", "group_by": "colour"}, "invalid_group_by"),
                       ({"product_id": "sku-1", "diversity": 1.5}, "validation_error")):
        response = client.post("/v1/search/similar", json=body, headers=auth(tenant.publishable_key))
        assert response.status_code == 422 and response.json()["error"]["code"] == code, response.text


# Variant grouping and diversity


def test_group_by_keeps_one_per_group_says_its_value_and_fetches_more_to_fill_the_page(shop):
    client, _, tenant, _ = shop
    # The 34 other variants are identical to var-00: the first 31 candidates are all group V-1.
    plain = ok(post(client, "/v1/search/similar", tenant.publishable_key, product_id="var-00", limit=3))
    assert all(pid.startswith("var-") for pid in ids(plain)) and "group" not in plain["results"][0]
    grouped = ok(post(client, "/v1/search/similar", tenant.publishable_key, product_id="var-00", limit=5,
                      group_by="attributes.group_id"))
    groups = [r["group"] for r in grouped["results"]]
    assert grouped["group_by"] == "attributes.group_id" and len(grouped["results"]) == 5
    assert groups.count("V-1") == 1 and {"O-b", "O-c", "S-1"} <= set(groups) and None in groups
    two = ok(post(client, "/v1/search/similar", tenant.publishable_key, product_id="var-00", limit=10,
                  group_by="attributes.group_id", group_size=2))
    assert [r["group"] for r in two["results"]].count("V-1") == 2
    by_stock = ok(post(client, "/v1/search/text", tenant.publishable_key, query="x", group_by="in_stock", limit=10))
    flags = [r["group"] for r in by_stock["results"] if r["group"] is not None]
    assert sorted(flags) == [False, True] and len(by_stock["results"]) == 6, "4 products say nothing of stock"


def test_diversity_spreads_the_page_over_different_products(shop):
    client, _, tenant, _ = shop
    # Candidates: var-01 and var-02 (copies of var-00), other-b and other-c.
    cheap = {"product_id": "var-00", "limit": 3, "filters": {"price": {"lte": 12}}}
    same = ok(post(client, "/v1/search/similar", tenant.publishable_key, **cheap))
    varied = ok(post(client, "/v1/search/similar", tenant.publishable_key, **cheap, diversity=1.0))
    assert ids(same)[:2] == ["var-01", "var-02"] or ids(same)[:2] == ["var-02", "var-01"]
    assert ids(varied)[0] in ("var-01", "var-02") and set(ids(varied)[1:]) == {"other-b", "other-c"}
    text = ok(post(client, "/v1/search/text", tenant.publishable_key, query="blue shoe", limit=4, diversity=0.7))
    assert len(text["results"]) == 4


# The query reader


def test_text_is_read_for_price_stock_colour_and_family(shop):
    client, _, tenant, _ = shop
    body = ok(post(client, "/v1/search/text", tenant.publishable_key, query="blue sneakers in stock under 20 dollars",
                   limit=50))
    assert body["interpreted"] == {"text": "blue sneakers", "filters": {"price": {"lte": 20}, "in_stock": True},
                                   "colours": ["blue"], "profile": "footwear", "cheaper_than": None}
    assert body["profile"] == "footwear" and body["profile_confidence"] == 1.0
    assert body["profile_source"] == "query"  # a word of the query named it, not the request
    prices = [r["metadata"]["price"] for r in body["results"]]
    assert prices and all(p <= 20 for p in prices) and all(r["metadata"]["in_stock"] for r in body["results"])


def test_the_callers_filters_win_and_interpret_false_turns_the_reader_off(shop):
    client, _, tenant, _ = shop
    body = ok(post(client, "/v1/search/text", tenant.publishable_key, query="shoes under 20 dollars", limit=50,
                   filters={"price": {"gte": 40}}))
    assert body["interpreted"]["filters"] == {} and all(r["metadata"]["price"] >= 40 for r in body["results"])
    off = ok(post(client, "/v1/search/text", tenant.publishable_key, query="shoes under 20 dollars", limit=50,
                  interpret=False))
    assert "interpreted" not in off and any(r["metadata"].get("price", 0) > 20 for r in off["results"])
    profile = ok(post(client, "/v1/search/text", tenant.publishable_key, query="red bag", profile="footwear"))
    assert profile["profile"] == "footwear" and profile["interpreted"]["profile"] == "accessories"


def test_fusion_like_this_but_cheaper_stays_below_the_near_duplicates_price(shop):
    client, server, tenant, _ = shop
    body = ok(post(client, "/v1/search/fusion", tenant.publishable_key, image_url=server.url("/sneaker.png"),
                   text="like this, but cheaper", limit=50))
    assert body["interpreted"]["cheaper_than"] in ("sku-1", "sku-1-copy")
    bound = {"sku-1": 89.0, "sku-1-copy": 60.0}[body["interpreted"]["cheaper_than"]]
    assert body["interpreted"]["filters"] == {"price": {"lt": bound}} and body["interpreted"]["text"] == ""
    assert body["results"] and all(r["metadata"]["price"] < bound for r in body["results"])
    plain = ok(client.post("/v1/search/fusion", headers=auth(tenant.publishable_key),
                           files={"file": ("q", SNEAKER)}, data={"text": "like this, but cheaper",
                                                                 "interpret": "false"}))
    assert "interpreted" not in plain


# Gates never empty a page


def test_a_query_whose_family_gates_every_candidate_still_gets_a_page_marked_relaxed(shop):
    client, _, tenant, _ = shop
    body = ok(post(client, "/v1/search/text", tenant.publishable_key, query="glasses", profile="optics", limit=5))
    assert body["gates_relaxed"] is True and len(body["results"]) == 5 and body["gated"] == []
    first = body["results"][0]
    assert first["_match_breakdown"]["gates"] == ["category:relaxed"]
    assert "a different kind of product than your query" in first["explanation"]
    normal = ok(post(client, "/v1/search/text", tenant.publishable_key, query="x", profile="footwear"))
    assert normal["gates_relaxed"] is False


@pytest.fixture(scope="module")
def strict_shop(shop_factory, tmp_path_factory):
    """A second service: optics never relaxes its gate, and only 2 products get duplicates at once."""
    root = tmp_path_factory.mktemp("strict")
    shutil.copytree(DEFAULT_PROFILES_DIR, root / "profiles")
    optics = root / "profiles" / "optics.yaml"
    optics.write_text(optics.read_text().replace("gates:\n", "gates:\n  relax_when_empty: false\n"))
    opened = shop_factory({"strict": [product(f"s{i}", "/v.png") for i in range(3)]}, images={"/v.png": VARIANT},
                          data_dir=root / "data", profiles_dir=root / "profiles", duplicates_sync_max_products=2)
    return opened.client, opened.tenants["strict"], root


def test_a_profile_can_turn_the_relaxation_off(strict_shop):
    client, tenant, _ = strict_shop
    body = ok(post(client, "/v1/search/text", tenant.publishable_key, query="glasses", profile="optics"))
    assert body["results"] == [] and sorted(body["gated"]) == ["s0", "s1", "s2"] and body["gates_relaxed"] is False


# Catalogue duplicates


def test_duplicates_are_grouped_largest_first_and_paged(shop):
    client, server, tenant, _ = shop
    key = auth(tenant.secret_key)
    body = ok(client.get("/v1/duplicates", params={"threshold": 0.97, "limit": 1}, headers=key))
    assert body["threshold"] == 0.97 and body["groups_total"] == 2 and len(body["groups"]) == 1
    first = body["groups"][0]
    assert first["products"] == VARIANTS and first["max_similarity"] == 1.0
    assert all(pair["a"] < pair["b"] and pair["similarity"] >= 0.97 for pair in first["pairs"])
    second = ok(client.get("/v1/duplicates", params={"limit": 1, "cursor": body["next_cursor"]}, headers=key))
    assert second["groups"][0]["products"] == ["sku-1", "sku-1-copy"] and second["next_cursor"] is None
    sneaker = {"url": server.url("/sneaker.png"), "position": 0}  # the pair says which images are near-identical
    assert second["groups"][0]["pairs"] == [{"a": "sku-1", "b": "sku-1-copy", "similarity": 1.0,
                                             "a_image": sneaker, "b_image": sneaker}]


@pytest.mark.parametrize("params, code", [({"threshold": 0.2}, "validation_error"),
                                          ({"threshold": "nan"}, "validation_error"),
                                          ({"cursor": "bogus"}, "invalid_cursor"),
                                          ({"limit": 0}, "validation_error")])
def test_duplicates_input_errors(shop, params, code):
    client, _, tenant, _ = shop
    response = client.get("/v1/duplicates", params=params, headers=auth(tenant.secret_key))
    assert response.status_code == 422 and response.json()["error"]["code"] == code


def test_duplicates_need_the_secret_key(shop):
    client, _, tenant, _ = shop
    for response in (client.get("/v1/duplicates", headers=auth(tenant.publishable_key)),
                     client.post("/v1/duplicates/scan", headers=auth(tenant.publishable_key))):
        assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"


def test_a_scan_gives_the_same_groups_in_the_background(shop):
    client, _, tenant, stranger = shop
    key = auth(tenant.secret_key)
    started = client.post("/v1/duplicates/scan", json={"threshold": 0.97}, headers=key)
    assert started.status_code == 202 and started.json()["status"] in ("pending", "running", "completed")
    scan_id = started.json()["scan_id"]
    deadline = time.monotonic() + 30
    while (scan := ok(client.get(f"/v1/duplicates/scan/{scan_id}", headers=key)))["status"] != "completed":
        assert scan["status"] in ("pending", "running") and time.monotonic() < deadline, scan
        time.sleep(0.05)
    now = ok(client.get("/v1/duplicates", headers=key))
    assert scan["groups"] == now["groups"] and scan["products_scanned"] == now["products_scanned"]
    assert scan["finished_at"] is not None
    other = client.get(f"/v1/duplicates/scan/{scan_id}", headers=auth(stranger.secret_key))
    assert other.status_code == 404 and other.json()["error"]["code"] == "scan_not_found"
    empty_body = client.post("/v1/duplicates/scan", headers=key)
    assert empty_body.status_code == 202 and empty_body.json()["threshold"] == 0.97
    bad = client.post("/v1/duplicates/scan", json={"threshold": "high"}, headers=key)
    assert bad.status_code == 422


def test_a_catalogue_too_large_to_compare_at_once_is_pointed_to_a_scan(strict_shop):
    client, tenant, _ = strict_shop
    response = client.get("/v1/duplicates", headers=auth(tenant.secret_key))
    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == "catalogue_too_large"
    assert error["details"] == {"products": 3, "max_products": 2} and "/v1/duplicates/scan" in error["message"]


def test_the_cli_writes_one_group_per_line(strict_shop, monkeypatch, capsys):
    client, tenant, root = strict_shop
    client.__exit__(None, None, None)  # the data directory has one owner at a time: stop the service first
    from trooply.cli import main

    monkeypatch.setenv("TROOPLY_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("TROOPLY_CLIP_MODEL", "trooply-test-tiny")
    monkeypatch.setenv("TROOPLY_CLIP_PRETRAINED", "random")
    out = root / "dups.jsonl"
    assert main(["duplicates", tenant.tenant_id, "--threshold", "0.99", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [group["products"] for group in lines] == [["s0", "s1", "s2"]]
    assert "1 groups holding 3 of 3 products" in capsys.readouterr().err
    assert main(["duplicates", "no-such-tenant"]) == 1
    assert main(["duplicates", tenant.tenant_id, "--threshold", "2"]) == 2
