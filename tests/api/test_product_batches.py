"""POST /v1/products with invalid products among valid ones: the valid ones go in, each invalid one is answered
with its index, field and code; a body of the wrong shape, or one without a single valid product, is refused."""

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant
from trooply.api.app import create_app

URL = "http://127.0.0.1:9/{}.png"


@pytest.fixture
def sk(client: TestClient) -> dict[str, str]:
    return auth(new_tenant(client).secret_key)


def product(product_id: str, **fields) -> dict:
    return {"id": product_id, "image_url": URL.format(product_id), **fields}


def test_valid_products_go_in_and_each_invalid_one_is_listed(client, sk):
    body = {"products": [product("ok-1"), product("bad-price", price="12"), {"title": "no id nor image"},
                         product("ok-2"), product("ok-1", title="again")]}
    response = client.post("/v1/products", json=body, headers=sk)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert (answer["accepted"], answer["rejected"], answer["unchanged"]) == (2, 3, 0)
    assert answer["job_id"] is not None
    seen = [(p["index"], p["id"], p["status"], (p["error"] or {}).get("code"), (p["error"] or {}).get("field"))
            for p in answer["products"]]
    assert seen == [(0, "ok-1", "pending", None, None),
                    (1, "bad-price", "rejected", "validation_error", "price"),
                    (2, None, "rejected", "validation_error", "id"),
                    (3, "ok-2", "pending", None, None),
                    (4, "ok-1", "rejected", "duplicate_id", "id")]
    # Every problem of a product is in its message, the first field named.
    assert "image_url" in answer["products"][2]["error"]["message"]
    stored = client.get("/v1/products", headers=sk).json()["products"]
    assert sorted(p["id"] for p in stored) == ["ok-1", "ok-2"]
    assert client.get("/v1/products/ok-1", headers=sk).json()["metadata"].get("title") is None  # the first one
    job = client.get(f"/v1/jobs/{answer['job_id']}", headers=sk).json()
    assert job["total"] == 2


def test_a_batch_without_one_valid_product_is_refused_whole(client, sk):
    response = client.post("/v1/products", json={"products": [product("a", price=-1), {"id": "b"}]}, headers=sk)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [(d["index"], d["product_id"], d["field"], d["code"]) for d in error["details"]] == [
        (0, "a", "price", "validation_error"), (1, "b", "image_url", "validation_error")]
    assert client.get("/v1/products", headers=sk).json()["products"] == []


def test_a_single_invalid_product_is_a_422_naming_the_field(client, sk):
    response = client.post("/v1/products", json=product("a", in_stock="yes"), headers=sk)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "in_stock"


@pytest.mark.parametrize("body", [[product("a")], {"products": [product("a")], "extra": 1}, {"products": []},
                                  {"products": product("a")}, "text"])
def test_a_body_of_the_wrong_shape_fails_the_whole_request(client, sk, body):
    response = client.post("/v1/products", json=body, headers=sk)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert client.get("/v1/products", headers=sk).json()["products"] == []


def test_the_plan_cap_and_invalid_products_are_counted_together(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, free_plan_max_products=1))) as client:
        sk = auth(new_tenant(client).secret_key)
        answer = client.post("/v1/products", json={"products": [product("a"), product("b"), {"id": "c"}]},
                             headers=sk).json()
        assert [(p["index"], p["status"], (p["error"] or {}).get("code")) for p in answer["products"]] == [
            (0, "pending", None), (1, "rejected", "quota_exceeded"), (2, "rejected", "validation_error")]
        assert (answer["accepted"], answer["rejected"]) == (1, 2)
