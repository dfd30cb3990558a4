"""Requests that mean one thing to a proxy and another to the app are refused; the app's redirects name no host;
the public API document leaves the admin API out (it has its own, behind the token)."""

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant
from trooply.api.app import create_app

TOKEN = "admin-token-0123456789abcdef"


@pytest.fixture
def admin_client(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, admin_token=TOKEN))) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/admin%2Fv1%2Ftenants", "/admin%2fv1/tenants", "/admin/v1%2Ftenants",
                                  "/v1%2Faccount", "/v1/products/a%2Fb", "/v1/products/a%5Cb", "/portal%2F"])
def test_an_encoded_slash_in_the_path_is_refused(admin_client, path):
    keys = new_tenant(admin_client)
    for key in (TOKEN, keys.secret_key):
        response = admin_client.get(path, headers=auth(key))
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_path", response.text


def test_an_encoded_character_that_is_no_slash_still_addresses_a_product(client):
    keys = new_tenant(client)
    client.post("/v1/products", json={"id": "sku 1", "image_url": "http://127.0.0.1:9/a.png"},
                headers=auth(keys.secret_key))
    assert client.get("/v1/products/sku%201", headers=auth(keys.secret_key)).status_code == 200


@pytest.mark.parametrize("path", ["/portal", "/v1/products/"])
def test_redirects_name_no_host_from_the_request(client, path):
    response = client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
    assert response.status_code in (307, 308)
    location = response.headers["location"]
    assert location.startswith("/") and "evil.example" not in location
    assert client.get(path, follow_redirects=True).status_code in (200, 401)


def test_two_authorization_headers_are_refused(admin_client):
    keys = new_tenant(admin_client)
    pairs = [(keys.secret_key, "sk_other"), (TOKEN, keys.secret_key), (keys.secret_key, TOKEN), (TOKEN, TOKEN)]
    for first, second in pairs:
        for path in ("/v1/account", "/admin/v1/tenants"):
            response = admin_client.get(path, headers=[("Authorization", f"Bearer {first}"),
                                                       ("Authorization", f"Bearer {second}")])
            assert (response.status_code, response.json()["error"]["code"]) == (400, "duplicate_authorization")


def test_the_public_api_document_leaves_the_admin_api_out(admin_client):
    public = admin_client.get("/openapi.json").json()
    assert public["paths"] and not [path for path in public["paths"] if path.startswith("/admin")]
    assert "/admin" not in admin_client.get("/docs").text
    assert admin_client.get("/admin/v1/openapi.json").status_code == 401
    tenant_key = new_tenant(admin_client).secret_key
    assert admin_client.get("/admin/v1/openapi.json", headers=auth(tenant_key)).status_code == 403
    admin_doc = admin_client.get("/admin/v1/openapi.json", headers=auth(TOKEN)).json()
    assert {"/admin/v1/tenants", "/admin/v1/tenants/{tenant_id}/keys/rotate", "/admin/v1/models/migrate"} <= set(
        admin_doc["paths"])
    assert not [path for path in admin_doc["paths"] if path.startswith("/v1")]


def test_a_body_refused_unread_closes_the_connection_and_a_read_one_keeps_it(client):
    keys = new_tenant(client)
    body = b'{"query": "red bag"}'
    refused = client.post("/v1/search/text", content=body, headers={"Content-Type": "application/json"})
    assert refused.status_code == 401 and refused.headers["connection"] == "close"
    too_big = client.post("/v1/search/text", content=b'{"query": "' + b"x" * 100_000 + b'"}',
                          headers={**auth(keys.publishable_key), "Content-Type": "application/json"})
    assert too_big.status_code == 413 and too_big.headers["connection"] == "close"
    answered = client.post("/v1/search/text", content=body,
                           headers={**auth(keys.publishable_key), "Content-Type": "application/json"})
    assert answered.status_code == 200 and "connection" not in answered.headers
    assert "connection" not in client.get("/v1/account", headers=auth(keys.secret_key)).headers
