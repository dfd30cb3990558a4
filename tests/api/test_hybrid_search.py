"""Words and pictures through the API: fusion before re-ranking, keyword_weight, exact identifiers, matched terms,
the stop-word fallback, bad input, and PATCH keeping the words current without a fetch."""

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from trooply.api.app import create_app

PRODUCTS = [
    {"id": "p1", "title": "Nike Air Max 90 sneakers", "brand": "Nike", "category": "shoes",
     "attributes": {"sku": "SKU-83421", "colour": "white"}},
    {"id": "p2", "title": "Samsonite cabin suitcase", "brand": "Samsonite", "category": "bags"},
    {"id": "p3", "title": "Samsonite duffel bag", "brand": "Samsonite", "category": "bags"},
    {"id": "p4", "title": "Red leather tote", "brand": "Acme", "category": "bags"},
    {"id": "TOTE-7", "title": "Canvas beach tote", "brand": "Acme", "category": "bags"},
    {"id": "p6", "title": "Merino crew-neck jumper", "brand": "Acme", "category": "knitwear"},
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    with TestClient(create_app(make_settings(tmp_path_factory.mktemp("hybrid")))) as client, ImageServer() as images:
        tenant = new_tenant(client, "shop")
        products = []
        for i, product in enumerate(PRODUCTS):
            images.add_image(f"/{i}.png", solid_png(40 + 10 * i, 40, (30 * i, 200 - 30 * i, 90)))
            products.append({**product, "image_url": images.url(f"/{i}.png")})
        job = client.post("/v1/products", json={"products": products}, headers=auth(tenant.secret_key)).json()
        assert wait_for_job(client, tenant.secret_key, job["job_id"])["counts"]["indexed"] == len(PRODUCTS)
        yield client, tenant, images


def text_search(shop, query: str, **options) -> dict:
    client, tenant, _ = shop
    # A named profile: the family (and its default keyword_weight) is known, and bags are not gated.
    answer = client.post("/v1/search/text", json={"query": query, "profile": "accessories", **options},
                         headers=auth(tenant.publishable_key))
    assert answer.status_code == 200, answer.text
    return answer.json()


def ids(envelope: dict) -> list[str]:
    return [result["id"] for result in envelope["results"]]


def test_the_product_the_shopper_named_comes_first_and_says_why(shop) -> None:
    envelope = text_search(shop, "air max 90", profile="footwear")
    assert envelope["keyword_weight"] == 0.3  # the footwear profile's
    first = envelope["results"][0]
    assert first["id"] == "p1"
    assert first["_match_breakdown"]["matched_terms"] == ["air", "max", "90"]
    assert first["_match_breakdown"]["signals"]["keywords"] == 1.0
    assert 'matches "air max 90" in the title' in first["explanation"]
    others = {r["id"]: r["_match_breakdown"] for r in envelope["results"][1:]}
    assert all(breakdown["matched_terms"] == [] for breakdown in others.values())


@pytest.mark.parametrize("query, product", [("SKU-83421", "p1"), ("sku-83421", "p1"), ("tote-7", "TOTE-7")])
def test_an_exact_identifier_puts_its_product_first(shop, query: str, product: str) -> None:
    first = text_search(shop, query, keyword_weight=0.1)["results"][0]
    assert first["id"] == product and "exact match on its id or product code" in first["explanation"]


def test_keyword_weight_one_is_words_only(shop) -> None:
    envelope = text_search(shop, "samsonite", keyword_weight=1)
    assert envelope["keyword_weight"] == 1.0 and sorted(ids(envelope)) == ["p2", "p3"]
    for result in envelope["results"]:
        assert result["_match_breakdown"]["weights"]["clip"] == 0.0
        assert result["_match_breakdown"]["matched_terms"] == ["samsonite"]


def test_filters_apply_to_the_words_too(shop) -> None:
    assert ids(text_search(shop, "samsonite", keyword_weight=1, filters={"brand": "acme"})) == []
    assert sorted(ids(text_search(shop, "samsonite tote", keyword_weight=1, filters={"brand": "acme"}))) == [
        "TOTE-7", "p4"]


def test_keyword_weight_zero_is_pictures_only_and_patch_keeps_the_words_current(shop) -> None:
    client, tenant, images = shop
    before = text_search(shop, "samsonite cabin", keyword_weight=0)
    assert before["keyword_weight"] == 0.0
    for result in before["results"]:
        assert "keywords" not in result["_match_breakdown"]["weights"]
        assert "matched_terms" not in result["_match_breakdown"]
    fetched = images.hits("/3.png")
    patched = client.patch("/v1/products/p4", json={"title": "Samsonite cabin tote"}, headers=auth(tenant.secret_key))
    assert patched.status_code == 200
    try:
        after = text_search(shop, "samsonite cabin", keyword_weight=0)
        assert [(r["id"], r["similarity_score"]) for r in after["results"]] == [
            (r["id"], r["similarity_score"]) for r in before["results"]]  # the words play no part
        assert "p4" in ids(text_search(shop, "samsonite cabin", keyword_weight=1))
        assert images.hits("/3.png") == fetched  # new words, no fetch (and so no encode)
    finally:
        client.patch("/v1/products/p4", json={"title": "Red leather tote"}, headers=auth(tenant.secret_key))
    assert "p4" not in ids(text_search(shop, "samsonite cabin", keyword_weight=1))


def test_a_query_of_stop_words_falls_back_to_pictures_and_says_so(shop) -> None:
    envelope = text_search(shop, "the of and")
    assert (envelope["keyword_weight"], envelope["keywords_fallback"]) == (0.0, "no_searchable_words")
    assert envelope["results"] and "keywords" not in envelope["results"][0]["_match_breakdown"]["weights"]
    assert "keywords_fallback" not in text_search(shop, "tote")


def test_fusion_weighs_words_too_and_image_modes_have_none(shop) -> None:
    client, tenant, images = shop
    fusion = client.post("/v1/search/fusion", json={"image_url": images.url("/5.png"), "text": "samsonite",
                                                    "keyword_weight": 1, "profile": "accessories"},
                         headers=auth(tenant.publishable_key)).json()
    assert fusion["keyword_weight"] == 1.0 and sorted(ids(fusion)) == ["p2", "p3"]
    led_by_image = client.post("/v1/search/fusion", json={"image_url": images.url("/5.png"), "text": "samsonite",
                                                          "image_weight": 0.8, "profile": "accessories"},
                               headers=auth(tenant.publishable_key)).json()
    assert led_by_image["keyword_weight"] == pytest.approx(0.3 * 0.2)  # the profile's share, as much as text leads
    url = client.post("/v1/search/url", json={"image_url": images.url("/5.png")},
                      headers=auth(tenant.publishable_key)).json()
    assert "keyword_weight" not in url and "matched_terms" not in url["results"][0]["_match_breakdown"]


@pytest.mark.parametrize("value", [1.5, -0.1, "0.5", True, None])
def test_a_keyword_weight_outside_zero_to_one_or_not_a_number_is_refused(shop, value) -> None:
    client, tenant, _ = shop
    body = {"query": "tote", "keyword_weight": value}
    answer = client.post("/v1/search/text", json=body, headers=auth(tenant.publishable_key))
    if value is None:  # null: the profile's
        assert answer.status_code == 200
        return
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "validation_error" and "keyword_weight" in error["message"]


def test_a_fusion_form_field_keyword_weight_must_be_a_number(shop) -> None:
    client, tenant, _ = shop
    answer = client.post("/v1/search/fusion", data={"text": "tote", "keyword_weight": "lots"},
                         files={"file": ("q.png", solid_png(20, 20, (1, 2, 3)), "image/png")},
                         headers=auth(tenant.publishable_key))
    assert answer.status_code == 422 and "keyword_weight" in answer.json()["error"]["message"]
