"""CORS for storefronts: a publishable key works from a browser only on its tenant's own origins; preflights
are answered for listed origins on the browser paths only; secret keys and the portal never get CORS headers."""

from fastapi.testclient import TestClient

from tests.conftest import auth, new_tenant

SHOP = "https://shop.example"
PREFLIGHT = {"Origin": SHOP, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}


def _allow(client: TestClient, secret_key: str, *origins: str) -> list[str]:
    answer = client.put("/v1/account/allowed-origins", json={"allowed_origins": list(origins)},
                        headers=auth(secret_key))
    assert answer.status_code == 200, answer.text
    return answer.json()["allowed_origins"]


def _search(client: TestClient, key: str, origin: str | None):
    headers = auth(key) | ({"Origin": origin} if origin else {})
    return client.post("/v1/search/text", json={"query": "red shoe"}, headers=headers)


def test_no_origins_listed_means_no_browser_access(client: TestClient) -> None:
    tenant = new_tenant(client)
    refused = _search(client, tenant.publishable_key, SHOP)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in refused.headers
    preflight = client.options("/v1/search/text", headers=PREFLIGHT)
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    assert _search(client, tenant.publishable_key, None).status_code == 200  # a server without Origin: unchanged


def test_a_listed_origin_gets_its_preflight_and_the_answer(client: TestClient) -> None:
    tenant = new_tenant(client)
    assert _allow(client, tenant.secret_key, "https://Shop.example/", "http://localhost:3000") == [
        "http://localhost:3000", SHOP]
    preflight = client.options("/v1/search/text", headers=PREFLIGHT)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SHOP
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert {"authorization", "content-type"} <= set(preflight.headers["access-control-allow-headers"].split(", "))
    for path in ("/v1/search/feedback", "/v1/events", "/v1/search/image"):
        assert client.options(path, headers=PREFLIGHT).status_code == 204
    answer = _search(client, tenant.publishable_key, SHOP)
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == SHOP
    assert "Origin" in answer.headers["vary"] and "x-request-id" in answer.headers["access-control-expose-headers"]
    # A refusal after the key was admitted is readable by the page too.
    invalid = client.post("/v1/search/text", json={"query": ""},
                          headers=auth(tenant.publishable_key) | {"Origin": SHOP})
    assert invalid.status_code == 422 and invalid.headers["access-control-allow-origin"] == SHOP


def test_a_key_copied_to_another_site_stops_working_there(client: TestClient) -> None:
    tenant, other = new_tenant(client), new_tenant(client, "other")
    _allow(client, tenant.secret_key, SHOP)
    _allow(client, other.secret_key, "https://other.example")
    # The other site's origin is listed (by its own tenant): its preflight passes, this key does not; the refusal
    # is readable there, so that the page can say why.
    copied = _search(client, tenant.publishable_key, "https://other.example")
    assert copied.status_code == 403 and copied.json()["error"]["code"] == "origin_not_allowed"
    assert copied.headers["access-control-allow-origin"] == "https://other.example"
    assert "results" not in copied.json()
    assert _search(client, other.publishable_key, "https://other.example").status_code == 200


def test_preflights_open_only_the_browser_paths_and_methods(client: TestClient) -> None:
    tenant = new_tenant(client)
    _allow(client, tenant.secret_key, SHOP)
    for path in ("/v1/products", "/v1/account", "/admin/v1/tenants", "/v1/analytics/overview"):
        answer = client.options(path, headers=PREFLIGHT)
        assert answer.status_code == 403 and "access-control-allow-origin" not in answer.headers
    delete = client.options("/v1/search/text", headers=PREFLIGHT | {"Access-Control-Request-Method": "DELETE"})
    assert delete.status_code == 403
    odd_header = client.options("/v1/search/text", headers=PREFLIGHT | {"Access-Control-Request-Headers": "x-secret"})
    assert odd_header.status_code == 403


def test_errors_before_a_key_is_admitted_are_readable_on_listed_origins(client: TestClient) -> None:
    tenant = new_tenant(client)
    _allow(client, tenant.secret_key, SHOP)
    bad_key = _search(client, "pk_not-a-real-key", SHOP)
    assert bad_key.status_code == 401 and bad_key.headers["access-control-allow-origin"] == SHOP
    unlisted = _search(client, "pk_not-a-real-key", "https://elsewhere.example")
    assert unlisted.status_code == 401 and "access-control-allow-origin" not in unlisted.headers


def test_secret_keys_never_get_cors_headers(client: TestClient) -> None:
    tenant = new_tenant(client)
    _allow(client, tenant.secret_key, SHOP)
    answer = _search(client, tenant.secret_key, SHOP)
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
    failed = client.post("/v1/search/text", json={"query": ""}, headers=auth(tenant.secret_key) | {"Origin": SHOP})
    assert failed.status_code == 422 and "access-control-allow-origin" not in failed.headers
    account = client.get("/v1/account", headers=auth(tenant.secret_key) | {"Origin": SHOP})
    assert "access-control-allow-origin" not in account.headers


def test_the_portal_on_the_same_origin_is_unaffected(client: TestClient) -> None:
    tenant = new_tenant(client)  # no origins at all
    same_origin = {"Origin": "http://testserver"}
    assert _search(client, tenant.publishable_key, "http://testserver").status_code == 200
    assert client.get("/v1/account", headers=auth(tenant.secret_key) | same_origin).status_code == 200


def test_origins_are_checked_and_shown(client: TestClient) -> None:
    tenant = new_tenant(client)
    bad = client.put("/v1/account/allowed-origins", json={"allowed_origins": ["https://*.shop.example"]},
                     headers=auth(tenant.secret_key))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_origin"
    forbidden = client.put("/v1/account/allowed-origins", json={"allowed_origins": [SHOP]},
                           headers=auth(tenant.publishable_key))
    assert forbidden.status_code == 403
    _allow(client, tenant.secret_key, SHOP)
    assert client.get("/v1/account", headers=auth(tenant.secret_key)).json()["allowed_origins"] == [SHOP]
    _allow(client, tenant.secret_key)  # an empty list closes the browser again
    assert _search(client, tenant.publishable_key, SHOP).status_code == 403


def test_operators_set_origins_with_the_admin_api(tmp_path) -> None:
    from tests.conftest import make_settings
    from trooply.api.app import create_app

    token = "t" * 32
    with TestClient(create_app(make_settings(tmp_path, admin_token=token))) as admin_client:
        tenant = new_tenant(admin_client)
        patched = admin_client.patch(f"/admin/v1/tenants/{tenant.tenant_id}", json={"allowed_origins": [SHOP]},
                                     headers=auth(token))
        assert patched.status_code == 200 and patched.json()["allowed_origins"] == [SHOP]
        assert _search(admin_client, tenant.publishable_key, SHOP).status_code == 200
        admin_preflight = admin_client.options(f"/admin/v1/tenants/{tenant.tenant_id}", headers=PREFLIGHT)
        assert admin_preflight.status_code == 403 and "access-control-allow-origin" not in admin_preflight.headers
