"""Keys, scopes and the error envelope: every bad input is a 4xx with a code, never a 500."""

import pytest

from tests.conftest import auth, new_tenant

PRODUCT = {"id": "p1", "image_url": "http://127.0.0.1:9/p1.png"}


@pytest.fixture
def creds(client):
    return new_tenant(client)


def test_missing_and_wrong_keys_are_401(client, creds):
    missing = client.post("/v1/search/text", json={"query": "shoe"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    wrong = client.post("/v1/search/text", json={"query": "shoe"}, headers=auth("sk_not-a-real-key"))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    basic = client.get("/v1/products", headers={"Authorization": f"Basic {creds.secret_key}"})
    assert basic.status_code == 401


def test_publishable_key_may_search_but_not_touch_the_catalog(client, creds):
    pk = auth(creds.publishable_key)
    assert client.post("/v1/search/text", json={"query": "shoe"}, headers=pk).status_code == 200
    for response in (client.post("/v1/products", json=PRODUCT, headers=pk),
                     client.get("/v1/products", headers=pk),
                     client.get("/v1/products/p1", headers=pk),
                     client.delete("/v1/products/p1", headers=pk),
                     client.get("/v1/jobs/job_x", headers=pk)):
        assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"


def test_keys_are_stored_only_as_hashes(client, creds):
    from sqlalchemy import select

    from trooply.tenancy.models import ApiKey

    with client.app.state.container.db.session() as session:
        stored = [row.key_hash for row in session.scalars(select(ApiKey))]
    assert creds.secret_key not in stored and creds.publishable_key not in stored and len(stored) == 2


def test_rotated_keys_replace_the_old_ones(client, creds):
    rotated = client.app.state.container.tenants.rotate_keys(creds.tenant_id)
    old = client.post("/v1/search/text", json={"query": "x"}, headers=auth(creds.publishable_key))
    assert old.status_code == 401
    assert client.post("/v1/search/text", json={"query": "x"}, headers=auth(rotated.publishable_key)).status_code == 200


# A valid product beside invalid ones goes in: tests/api/test_product_batches.py.
@pytest.mark.parametrize("body, field", [
    ({"products": [{"id": "p2"}]}, "image_url"),
    ({"products": [{**PRODUCT, "image_url": "ftp://x/y.png", "id": "p3"}]}, "image_url"),
    ({"products": [{**PRODUCT, "price": "cheap"}]}, "price"),
    ({"products": [{**PRODUCT, "colour": "red"}]}, "colour"),
    ({"products": []}, None),
    ([PRODUCT], None),
])
def test_a_request_without_a_valid_product_names_the_product_and_field_and_nothing_is_accepted(
        client, creds, body, field):
    response = client.post("/v1/products", json=body, headers=auth(creds.secret_key))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    if field:
        assert error["details"][0]["field"] == field and field in error["message"]
        assert error["details"][0]["product_id"] in ("p1", "p2", "p3", None)
    listed = client.get("/v1/products", headers=auth(creds.secret_key)).json()["products"]
    assert listed == []


def test_batch_over_1000_is_refused(client, creds):
    body = {"products": [{**PRODUCT, "id": f"p{i}"} for i in range(1001)]}
    response = client.post("/v1/products", json=body, headers=auth(creds.secret_key))
    assert response.status_code == 422 and "1000" in response.json()["error"]["message"]


@pytest.mark.parametrize("body, code", [
    ({"query": "x", "limit": 0}, "validation_error"),
    ({"query": "x", "limit": 101}, "validation_error"),
    ({"query": "x", "threshold": 1.5}, "validation_error"),
    ({"query": ""}, "validation_error"),
    ({"query": "x", "filters": {"colour": "red"}}, "invalid_filter"),
    ({"query": "x", "filters": {"price": "cheap"}}, "invalid_filter"),
    ({"query": "x", "filters": {"price": {"between": [1, 2]}}}, "invalid_filter"),
    ({"query": "x", "filters": {"in_stock": "yes"}}, "invalid_filter"),
    ({"query": "x", "filters": {"category": {"gte": 3}}}, "invalid_filter"),
    ({"query": "x", "filters": ["category"]}, "validation_error"),
    ({"query": "x", "profile": "cars"}, "unknown_profile"),
    ({"query": "x", "unexpected": 1}, "validation_error"),
])
def test_bad_search_input_is_422_with_a_code(client, creds, body, code):
    response = client.post("/v1/search/text", json=body, headers=auth(creds.publishable_key))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code


def test_unreadable_uploads_and_bad_form_fields_are_4xx(client, creds):
    pk = auth(creds.publishable_key)
    not_image = client.post("/v1/search/image", files={"file": ("a.png", b"GIF89a-but-not-really")}, headers=pk)
    assert not_image.status_code == 422 and not_image.json()["error"]["code"] == "unsupported_media_type"
    empty = client.post("/v1/search/image", files={"file": ("a.png", b"")}, headers=pk)
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_upload"
    bad_filters = client.post("/v1/search/image", files={"file": ("a.png", b"x")}, data={"filters": "{oops"},
                              headers=pk)
    assert bad_filters.status_code == 422 and bad_filters.json()["error"]["code"] == "invalid_filter"
    bad_limit = client.post("/v1/search/image", files={"file": ("a.png", b"x")}, data={"limit": "500"}, headers=pk)
    assert bad_limit.status_code == 422
    missing_file = client.post("/v1/search/image", data={"limit": "5"}, headers=pk)
    assert missing_file.status_code == 422


def test_upload_over_the_cap_is_413(tmp_path):
    from fastapi.testclient import TestClient

    from tests.conftest import make_settings
    from trooply.api.app import create_app

    with TestClient(create_app(make_settings(tmp_path, max_upload_bytes=1000))) as client:
        creds = new_tenant(client)
        response = client.post("/v1/search/image", files={"file": ("a.png", b"x" * 1001)},
                               headers=auth(creds.publishable_key))
    assert response.status_code == 413 and response.json()["error"]["code"] == "upload_too_large"


def test_url_search_refuses_blocked_addresses(client, creds):
    response = client.post("/v1/search/url", json={"image_url": "http://127.0.0.2:9/x.png"},
                           headers=auth(creds.publishable_key))
    assert response.status_code == 422 and response.json()["error"]["code"] == "blocked_address"
    # The answer names the setting that lets a local image host through.
    error = response.json()["error"]
    assert error["details"] == {"host": "127.0.0.2", "address": "127.0.0.2",
                                "setting": "TROOPLY_FETCH_ALLOWED_NETWORKS", "example": '["127.0.0.2/32"]'}
    assert "TROOPLY_FETCH_ALLOWED_NETWORKS" in error["message"]


def test_unknown_routes_and_ids_are_404_and_every_response_has_a_request_id(client, creds):
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert response.headers["X-Request-ID"]
    echoed = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    job = client.get("/v1/jobs/job_missing", headers=auth(creds.secret_key))
    assert job.status_code == 404 and job.json()["error"]["code"] == "job_not_found"


def test_patch_refuses_image_changes(client, creds):
    sk = auth(creds.secret_key)
    client.post("/v1/products", json=PRODUCT, headers=sk)
    response = client.patch("/v1/products/p1", json={"image_url": "http://127.0.0.1:9/new.png"}, headers=sk)
    assert response.status_code == 422 and response.json()["error"]["code"] == "image_change_requires_post"
    bad = client.patch("/v1/products/p1", json={"price": -1}, headers=sk)
    assert bad.status_code == 422


def test_readyz_reports_each_dependency(client):
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["checks"] == {"sql": "ok", "index": "ok", "queue": "ok", "model": "ok"}
    # The model runtime says what is loaded, where and in which precision; Whisper loads on first use.
    clip = body["models"]["clip"]
    assert {key: clip[key] for key in ("loaded", "model", "pretrained", "dim", "device", "precision")} == {
        "loaded": True, "model": "trooply-test-tiny", "pretrained": "random", "dim": 64, "device": "cpu",
        "precision": "fp32"}
    assert clip["loaded_from"] == "random weights (no retrieval quality)"
    assert body["models"]["whisper"] == {"loaded": False, "waiting": 0}
