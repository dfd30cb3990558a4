"""The tenant's own account and key rotation, the profile list, and the portal's static files: served from the
package at /portal with the headers a page that holds a secret key needs."""

import re

from fastapi.testclient import TestClient

from tests.conftest import auth, new_tenant
from trooply.portal import STATIC_DIR


def test_account_names_the_tenant_and_its_active_key_prefixes(client: TestClient) -> None:
    tenant = new_tenant(client, "Acme Shoes", plan="pro")
    account = client.get("/v1/account", headers=auth(tenant.secret_key)).json()
    assert (account["tenant_id"], account["name"], account["plan"]) == (tenant.tenant_id, "Acme Shoes", "pro")
    assert sorted((key["kind"], key["prefix"]) for key in account["keys"]) == [
        ("publishable", tenant.publishable_key[:8]), ("secret", tenant.secret_key[:8])]
    assert client.get("/v1/account", headers=auth(tenant.publishable_key)).status_code == 403


def test_rotation_answers_new_keys_once_and_revokes_both_old_ones(client: TestClient) -> None:
    tenant, other = new_tenant(client), new_tenant(client, "other")
    assert client.post("/v1/keys/rotate", headers=auth(tenant.publishable_key)).status_code == 403
    answer = client.post("/v1/keys/rotate", headers=auth(tenant.secret_key))
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    keys = answer.json()
    assert keys["tenant_id"] == tenant.tenant_id
    assert keys["secret_key"].startswith("sk_") and keys["publishable_key"].startswith("pk_")
    for old in (tenant.secret_key, tenant.publishable_key):
        refused = client.post("/v1/search/text", json={"query": "x"}, headers=auth(old))
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert client.get("/v1/account", headers=auth(keys["secret_key"])).json()["keys"][0]["prefix"] in (
        keys["secret_key"][:8], keys["publishable_key"][:8])
    assert client.get("/v1/account", headers=auth(other.secret_key)).status_code == 200  # other tenants untouched


def test_profiles_list_names_and_weights_for_any_key(client: TestClient) -> None:
    tenant = new_tenant(client)
    profiles = client.get("/v1/profiles", headers=auth(tenant.publishable_key)).json()["profiles"]
    assert len(profiles) == 10 and "footwear" in {p["name"] for p in profiles}
    for profile in profiles:
        assert abs(sum(profile["weights"].values()) - 1) < 1e-6 and profile["categories"]


def test_the_usage_report_names_the_plan(client: TestClient) -> None:
    tenant = new_tenant(client, plan="pro")
    assert client.get("/v1/usage", headers=auth(tenant.secret_key)).json()["plan"] == "pro"


def test_the_portal_is_served_from_the_package_with_strict_headers(client: TestClient) -> None:
    redirect = client.get("/portal", follow_redirects=False)
    assert redirect.status_code in (301, 307) and redirect.headers["location"].endswith("/portal/")
    page = client.get("/portal/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'type="module" src="js/main.js"' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"
    script = client.get("/portal/js/main.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert client.get("/portal/js/nope.js").status_code == 404
    assert client.get("/portal/../pyproject.toml").status_code == 404


def test_the_portal_reaches_nothing_outside_this_server() -> None:
    # Offline by construction: the only absolute URLs in the shipped files are examples and the SVG namespace.
    for path in STATIC_DIR.rglob("*"):
        if path.suffix in (".html", ".js", ".css", ".svg"):
            text = path.read_text()
            for host in re.findall(r"https?://([^/\s\"'`)]+)", text):
                assert host.endswith("example.com") or host == "www.w3.org", f"{path.name} reaches {host}"
            assert "innerHTML" not in text, f"{path.name}: API data is set as text, never parsed as HTML"


def test_the_default_currency_is_set_on_the_account_and_checked(client: TestClient) -> None:
    creds = new_tenant(client)
    key = auth(creds.secret_key)
    assert client.get("/v1/account", headers=key).json()["default_currency"] is None
    answer = client.patch("/v1/account", json={"default_currency": "eur"}, headers=key)
    assert answer.status_code == 200 and answer.json()["default_currency"] == "EUR"
    assert client.get("/v1/account", headers=key).json()["default_currency"] == "EUR"
    for bad in ("EURO", "", 978):
        refused = client.patch("/v1/account", json={"default_currency": bad}, headers=key)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "validation_error"
    assert client.patch("/v1/account", json={"default_currency": "USD"},
                        headers=auth(creds.publishable_key)).status_code == 403
    assert client.patch("/v1/account", json={"default_currency": None}, headers=key).json()["default_currency"] is None
