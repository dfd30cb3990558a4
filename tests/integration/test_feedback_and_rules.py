"""Clicks and purchases move the ranking after the popularity refresh; rules boost and bury; both APIs
validate their input and stay inside the tenant."""

import pytest

from tests.conftest import auth
from tests.support.images import solid_png, two_halves_png

TWIN = two_halves_png(80, 80, (200, 40, 40), (40, 40, 200))
QUERY = {"query": "red and blue sneaker", "profile": "footwear", "limit": 10}


@pytest.fixture(scope="module")
def shop(shop_factory):
    products = [{"id": f"twin-{i}", "image_url": f"/twin-{i}.png", "category": "shoes", "brand": "Acme"}
                for i in (1, 2)]
    products += [{"id": f"other-{i}", "image_url": f"/other-{i}.png", "category": "sneakers", "brand": "Zenith",
                  "price": 10.0 * (i + 1)} for i in range(4)]
    images = {"/twin-1.png": TWIN, "/twin-2.png": TWIN,
              **{f"/other-{i}.png": solid_png(80, 80, (i * 50, 120, 30)) for i in range(4)}}
    opened = shop_factory({"shop": products, "other": []}, images=images)
    return opened.client, opened.tenants["shop"], opened.tenants["other"]


def search(client, key, **overrides):
    response = client.post("/v1/search/text", json={**QUERY, **overrides}, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


def feedback(client, key, **body):
    return client.post("/v1/search/feedback", json=body, headers=auth(key))


def test_repeated_clicks_and_purchases_lift_the_lower_twin_above_the_other(shop):
    client, tenant, _ = shop
    pk = tenant.publishable_key
    first = search(client, pk)
    twins = [r for r in first["results"] if r["id"].startswith("twin-")]
    upper, lower = twins[0]["id"], twins[1]["id"]
    assert twins[0]["similarity_score"] == twins[1]["similarity_score"]
    for _ in range(6):
        body = search(client, pk)
        position = [r["id"] for r in body["results"]].index(lower)
        for event in ("click", "add_to_cart", "purchase"):
            sent = feedback(client, pk, search_id=body["search_id"], product_id=lower, event=event, position=position)
            assert sent.status_code == 202 and sent.json() == {"recorded": True, "duplicate": False}
        again = feedback(client, pk, search_id=body["search_id"], product_id=lower, event="click", position=position)
        assert again.status_code == 202 and again.json()["duplicate"] is True

    assert search(client, pk)["results"][0]["id"] == upper, "nothing moves before the refresh"
    client.app.state.container.popularity.refresh_all()

    after = search(client, pk)
    ranked = [r["id"] for r in after["results"]]
    assert ranked.index(lower) < ranked.index(upper)
    by_id = {r["id"]: r for r in after["results"]}
    lifted, other = by_id[lower]["_match_breakdown"], by_id[upper]["_match_breakdown"]
    assert lifted["signals"]["popularity"] > 0.5 >= other["signals"]["popularity"]
    assert {k: v for k, v in lifted["signals"].items() if k != "popularity"} == \
           {k: v for k, v in other["signals"].items() if k != "popularity"}
    assert "popular this week" in by_id[lower]["explanation"]


def test_feedback_is_validated_against_the_tenants_own_searches(shop):
    client, tenant, other = shop
    body = search(client, tenant.publishable_key)
    shown = body["results"][0]["id"]
    theirs = search(client, other.publishable_key)
    cases = [
        (tenant.publishable_key, {"search_id": "srch_nope", "product_id": shown}, "unknown_search"),
        (tenant.publishable_key, {"search_id": theirs["search_id"], "product_id": shown}, "unknown_search"),
        (other.publishable_key, {"search_id": body["search_id"], "product_id": shown}, "unknown_search"),
        (tenant.publishable_key, {"search_id": body["search_id"], "product_id": "not-shown"}, "product_not_in_search"),
        (tenant.publishable_key, {"search_id": body["search_id"], "product_id": shown, "event": "like"},
         "validation_error"),
        (tenant.publishable_key, {"search_id": body["search_id"], "product_id": shown, "position": -1},
         "validation_error"),
    ]
    for key, fields, code in cases:
        response = feedback(client, key, **{"event": "click", "position": 0, **fields})
        assert response.status_code == 422 and response.json()["error"]["code"] == code, (fields, response.text)
    assert feedback(client, tenant.secret_key, search_id=body["search_id"], product_id=shown, event="click",
                    position=0).status_code == 202
    assert client.post("/v1/search/feedback", json={}).status_code == 401


def test_rules_boost_and_bury_through_the_api(shop):
    client, tenant, other = shop
    sk = auth(tenant.secret_key)
    zenith = {"filters": {"brand": "zenith"}}  # four products that differ by little but their price
    before = [r["id"] for r in search(client, tenant.publishable_key, **zenith)["results"]]
    cheapest, dearest = "other-0", "other-3"
    for rule in ({"name": "promote entry price", "filters": {"price": {"lte": 15}}, "weight": 1.0},
                 {"name": "clear premium", "filters": {"price": {"gte": 35}}, "weight": -1.0}):
        created = client.post("/v1/rules", json=rule, headers=sk)
        assert created.status_code == 201, created.text
    body = search(client, tenant.publishable_key, **zenith)
    after = [r["id"] for r in body["results"]]
    assert after[0] == cheapest and after[-1] == dearest and sorted(after) == sorted(before)
    by_id = {r["id"]: r for r in body["results"]}
    assert by_id[cheapest]["_match_breakdown"]["signals"]["rules"] == 1.0
    assert by_id[dearest]["_match_breakdown"]["signals"]["rules"] == 0.0
    assert "promoted by the merchant" in by_id[cheapest]["explanation"]
    assert "lowered by a merchant rule" in by_id[dearest]["explanation"]

    listed = client.get("/v1/rules", headers=sk).json()["rules"]
    assert [(r["name"], r["weight"]) for r in listed] == [("promote entry price", 1.0), ("clear premium", -1.0)]
    assert client.get("/v1/rules", headers=auth(other.secret_key)).json() == {"rules": []}
    assert client.delete(f"/v1/rules/{listed[0]['id']}", headers=auth(other.secret_key)).status_code == 404
    for rule in listed:
        assert client.delete(f"/v1/rules/{rule['id']}", headers=sk).status_code == 204
    assert client.delete(f"/v1/rules/{listed[0]['id']}", headers=sk).json()["error"]["code"] == "rule_not_found"
    assert "rules" not in search(client, tenant.publishable_key)["results"][0]["_match_breakdown"]["weights"]


@pytest.mark.parametrize("rule, code", [
    ({"filters": {"colour": "red"}, "weight": 1}, "invalid_filter"),
    ({"filters": {"price": "cheap"}, "weight": 1}, "invalid_filter"),
    ({"filters": {"brand": "x"}, "weight": 0}, "validation_error"),
    ({"filters": {"brand": "x"}, "weight": 2}, "validation_error"),
    ({"filters": {}, "weight": 1}, "validation_error"),
    ({"filters": {"brand": "x"}, "weight": 1, "profile": "cars"}, "unknown_profile"),
])
def test_rules_are_validated_like_filters(shop, rule, code):
    client, tenant, _ = shop
    response = client.post("/v1/rules", json=rule, headers=auth(tenant.secret_key))
    assert response.status_code == 422 and response.json()["error"]["code"] == code


def test_rules_need_the_secret_key_and_profile_override_shows_in_the_envelope(shop):
    client, tenant, _ = shop
    response = client.post("/v1/rules", json={"filters": {"brand": "x"}, "weight": 1},
                           headers=auth(tenant.publishable_key))
    assert response.status_code == 403
    body = search(client, tenant.publishable_key, profile="displays")
    assert body["profile"] == "displays" and body["profile_confidence"] == 1.0 and body["profile_source"] == "request"
    auto = search(client, tenant.publishable_key, profile=None)
    assert auto["profile"] in client.app.state.container.profiles and 0 < auto["profile_confidence"] <= 1
    assert auto["profile_source"] == "query"  # "sneaker" names the family
