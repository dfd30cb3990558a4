"""The admin API: off (404) without TROOPLY_ADMIN_TOKEN; with it, tenants are created, listed, read, moved to
another plan (at once, quotas included), given new keys and deleted (keys refused at once, data purged)."""

import time

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from trooply.api.app import create_app

TOKEN = "admin-token-for-tests-0123456789"
ADMIN = auth(TOKEN)


def products(ids):
    return {"products": [{"id": f"p{i}", "image_url": f"http://127.0.0.1:9/{i}.png"} for i in ids]}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("admin"), admin_token=TOKEN, free_plan_max_products=2)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def create(client, name="shop", plan="free") -> dict:
    response = client.post("/admin/v1/tenants", json={"name": name, "plan": plan}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_without_a_token_every_admin_path_is_404(tmp_path):
    with TestClient(create_app(make_settings(tmp_path))) as client:
        for method, path in [("GET", "/admin/v1/tenants"), ("POST", "/admin/v1/tenants"),
                             ("DELETE", "/admin/v1/tenants/ten_x")]:
            response = client.request(method, path, headers=ADMIN)
            assert response.status_code == 404 and error_code(response) == "not_found"


def test_only_the_admin_token_opens_the_admin_api(client):
    tenant = create(client)
    for headers, status, code in [({}, 401, "invalid_admin_token"), (auth("wrong-token"), 401, "invalid_admin_token"),
                                  (auth(TOKEN + "x"), 401, "invalid_admin_token"),
                                  (auth(tenant["secret_key"]), 403, "forbidden"),
                                  (auth(tenant["publishable_key"]), 403, "forbidden")]:
        response = client.get("/admin/v1/tenants", headers=headers)
        assert (response.status_code, error_code(response)) == (status, code)
    # And the admin token is no tenant key.
    assert error_code(client.get("/v1/account", headers=ADMIN)) == "invalid_api_key"


def test_a_created_tenant_gets_working_keys_shown_once(client):
    tenant = create(client, "  Acme Shoes ", "pro")
    assert tenant["name"] == "Acme Shoes" and tenant["plan"] == "pro"
    account = client.get("/v1/account", headers=auth(tenant["secret_key"])).json()
    assert account["tenant_id"] == tenant["tenant_id"] and account["plan"] == "pro"
    shown = client.get(f"/admin/v1/tenants/{tenant['tenant_id']}", headers=ADMIN).json()
    assert tenant["secret_key"] not in str(shown)
    assert {key["kind"] for key in shown["keys"]} == {"secret", "publishable"}
    assert shown["limits"] == {"max_products": None, "monthly_item_calls": 100_000, "rate_limit": 200.0,
                               "max_images_per_product": 10}


@pytest.mark.parametrize("body, code", [
    ({"name": "shop", "plan": "gold"}, "unknown_plan"),
    ({"name": "   "}, "validation_error"),
    ({"plan": "free"}, "validation_error"),
    ({"name": "shop", "owner": "me"}, "validation_error"),
    ({"name": 5}, "validation_error"),
])
def test_bad_tenants_are_refused(client, body, code):
    response = client.post("/admin/v1/tenants", json=body, headers=ADMIN)
    assert response.status_code == 422 and error_code(response) == code


def test_tenants_are_listed_in_pages_with_their_product_counts(client):
    made = [create(client, f"listed-{i}") for i in range(3)]
    client.post("/v1/products", json=products(range(2)), headers=auth(made[0]["secret_key"]))
    seen, after = {}, None
    while True:
        page = client.get("/admin/v1/tenants", params={"limit": 2, **({"after": after} if after else {})},
                          headers=ADMIN).json()
        assert len(page["tenants"]) <= 2
        seen |= {tenant["tenant_id"]: tenant for tenant in page["tenants"]}
        if (after := page["next_after"]) is None:
            break
    assert {tenant["tenant_id"] for tenant in made} <= seen.keys()
    assert seen[made[0]["tenant_id"]]["products"] == 2 and seen[made[1]["tenant_id"]]["products"] == 0
    assert all(tenant["storage_tier"] == "shared" and tenant["promoting"] is False for tenant in seen.values())
    assert client.get("/admin/v1/tenants", params={"limit": 0}, headers=ADMIN).status_code == 422


def test_a_plan_change_takes_effect_at_once_quotas_included(client):
    tenant = create(client, "growing", "free")
    key, path = auth(tenant["secret_key"]), f"/admin/v1/tenants/{tenant['tenant_id']}"
    assert client.post("/v1/products", json=products(range(3)), headers=key).json()["accepted"] == 2
    changed = client.patch(path, json={"plan": "pro", "name": "grown"}, headers=ADMIN).json()
    assert changed["plan"] == "pro" and changed["name"] == "grown" and changed["limits"]["max_products"] is None
    assert client.post("/v1/products", json=products(range(2, 5)), headers=key).json()["accepted"] == 3
    assert client.get("/v1/account", headers=key).json()["plan"] == "pro"
    for body, code in [({"plan": "gold"}, "unknown_plan"), ({}, "validation_error"),
                       ({"name": ""}, "validation_error")]:
        response = client.patch(path, json=body, headers=ADMIN)
        assert response.status_code == 422 and error_code(response) == code


def test_unknown_and_malformed_tenant_ids(client):
    response = client.get("/admin/v1/tenants/ten_missing", headers=ADMIN)
    assert response.status_code == 404 and error_code(response) == "tenant_not_found"
    for method in ("GET", "PATCH", "DELETE"):
        response = client.request(method, "/admin/v1/tenants/bad%00id", headers=ADMIN, json={"plan": "pro"})
        assert response.status_code == 422 and error_code(response) == "validation_error"
    assert error_code(client.post("/admin/v1/tenants/ten_missing/keys/rotate", headers=ADMIN)) == "tenant_not_found"


def test_rotated_keys_replace_the_old_ones_at_once(client):
    tenant = create(client)
    old = auth(tenant["secret_key"])
    assert client.get("/v1/account", headers=old).status_code == 200
    rotated = client.post(f"/admin/v1/tenants/{tenant['tenant_id']}/keys/rotate", headers=ADMIN)
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    assert client.get("/v1/account", headers=old).status_code == 401
    assert client.get("/v1/account", headers=auth(rotated.json()["secret_key"])).status_code == 200


def test_a_deleted_tenant_is_refused_at_once_and_purged(client):
    tenant, bystander = create(client, "leaving"), create(client, "staying")
    key, tenant_id = auth(tenant["secret_key"]), tenant["tenant_id"]
    assert client.post("/v1/products", json=products(range(2)), headers=key).json()["accepted"] == 2
    assert client.get("/v1/account", headers=key).status_code == 200  # the key is cached now

    response = client.delete(f"/admin/v1/tenants/{tenant_id}", headers=ADMIN)
    assert response.status_code == 202 and response.json() == {"tenant_id": tenant_id, "status": "deleting"}
    assert error_code(client.get("/v1/account", headers=key)) == "invalid_api_key"
    assert error_code(client.get("/v1/products", headers=auth(tenant["publishable_key"]))) == "invalid_api_key"

    deadline = time.monotonic() + 30
    while client.delete(f"/admin/v1/tenants/{tenant_id}", headers=ADMIN).status_code == 202:
        assert time.monotonic() < deadline, "the purge did not finish"
        time.sleep(0.05)
    assert error_code(client.delete(f"/admin/v1/tenants/{tenant_id}", headers=ADMIN)) == "tenant_not_found"
    assert error_code(client.get(f"/admin/v1/tenants/{tenant_id}", headers=ADMIN)) == "tenant_not_found"
    assert client.app.state.container.index.count(tenant_id) == 0
    assert client.get("/v1/account", headers=auth(bystander["secret_key"])).status_code == 200


def test_the_admin_token_is_never_rate_limited(tmp_path):
    settings = make_settings(tmp_path, admin_token=TOKEN, rate_limit_per_ip=1, rate_limit_burst_seconds=1)
    with TestClient(create_app(settings)) as client:
        client.app.state.rate_limiter.buckets.clock = lambda: 0.0  # time stands still: no bucket refills
        assert all(client.get("/admin/v1/tenants", headers=ADMIN).status_code == 200 for _ in range(10))
        statuses = [client.get("/admin/v1/tenants", headers=auth("wrong-token")).status_code for _ in range(3)]
        assert statuses == [401, 429, 429]


def test_a_tenant_past_the_promotion_threshold_is_listed_dedicated_and_keeps_answering(tmp_path):
    settings = make_settings(tmp_path, admin_token=TOKEN, index_promotion_threshold=4)
    with TestClient(create_app(settings)) as client, ImageServer() as images:
        small, big = create(client, "small", "pro"), create(client, "big", "pro")
        for i in range(6):
            images.add_image(f"/{i}.png", solid_png(40, 40, (40 * i, 90, 200 - 30 * i)))
        for tenant, count in ((small, 2), (big, 6)):
            batch = {"products": [{"id": f"p{i}", "image_url": images.url(f"/{i}.png")} for i in range(count)]}
            job = client.post("/v1/products", json=batch, headers=auth(tenant["secret_key"])).json()["job_id"]
            assert wait_for_job(client, tenant["secret_key"], job)["counts"]["indexed"] == count

        def tier(tenant):
            return client.get(f"/admin/v1/tenants/{tenant['tenant_id']}", headers=ADMIN).json()

        deadline = time.monotonic() + 60
        while (tier(big)["storage_tier"], tier(big)["promoting"]) != ("dedicated", False) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (tier(big)["storage_tier"], tier(small)["storage_tier"]) == ("dedicated", "shared")
        for tenant, count in ((small, 2), (big, 6)):
            found = client.post("/v1/search/text", json={"query": "a product", "limit": 10},
                                headers=auth(tenant["publishable_key"])).json()["results"]
            assert {hit["id"] for hit in found} == {f"p{i}" for i in range(count)}



def test_a_tenant_deleted_from_the_cli_beside_a_running_server_is_purged_by_its_sweep(tmp_path):
    import sqlite3
    import subprocess
    import sys

    from tests.support.services import create_tenant_cli, serving, trooply_env

    env = trooply_env(tmp_path)
    with serving(env, tmp_path / "serve.log"):
        tenant_id = create_tenant_cli(env)["tenant_id"]
        subprocess.run([sys.executable, "-m", "trooply.cli", "tenants", "delete", tenant_id], env=env,
                       capture_output=True, text=True, check=True)

        def tenant_rows() -> int:
            with sqlite3.connect(tmp_path / "trooply.db") as db:
                return db.execute("SELECT count(*) FROM tenants WHERE id = ?", (tenant_id,)).fetchone()[0]

        # The CLI only marks the tenant deleted (it has no queue beside the server): the server's sweep purges it.
        deadline = time.monotonic() + 60
        while tenant_rows() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert tenant_rows() == 0
