"""A leaked secret key racing the admin's rotation: the admin's keys are the ones left, every time. Real
concurrency: the calls go from threads through the app onto one SQLite database, the admin's 2 ms after."""

import threading
import time

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant
from trooply.api.app import create_app

TOKEN = "admin-token-0123456789abcdef"
TENANT_CALLS = 4


@pytest.fixture
def admin_client(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, admin_token=TOKEN, key_cache_seconds=30))) as test_client:
        yield test_client


def valid(client: TestClient, key: str) -> bool:
    return client.get("/v1/profiles", headers=auth(key)).status_code == 200


@pytest.mark.parametrize("round_", range(6))
def test_a_rotation_by_a_key_the_admin_revoked_meanwhile_is_refused(admin_client, round_):
    tenant = new_tenant(admin_client)
    leaked = tenant.secret_key
    assert valid(admin_client, leaked)  # cached now: the race is decided under the lock, not by the cache
    start = threading.Barrier(TENANT_CALLS + 1)
    answers: list[tuple[str, int, dict]] = []

    def rotate_as_tenant() -> None:
        start.wait()
        response = admin_client.post("/v1/keys/rotate", headers=auth(leaked))
        answers.append(("tenant", response.status_code, response.json()))

    def rotate_as_admin() -> None:
        start.wait()
        time.sleep(0.002)
        response = admin_client.post(f"/admin/v1/tenants/{tenant.tenant_id}/keys/rotate", headers=auth(TOKEN))
        answers.append(("admin", response.status_code, response.json()))

    threads = [threading.Thread(target=rotate_as_tenant) for _ in range(TENANT_CALLS)]
    threads.append(threading.Thread(target=rotate_as_admin))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    (admin,) = [body for who, status, body in answers if who == "admin" and status == 200]
    minted_by_tenant = [body for who, status, body in answers if who == "tenant" and status == 200]
    refused = [body for who, status, body in answers if who == "tenant" and status != 200]
    assert len(minted_by_tenant) <= 1, "each rotation revokes the key the others called with"
    assert all(body["error"]["code"] == "invalid_api_key" for body in refused)
    assert valid(admin_client, admin["secret_key"]) and valid(admin_client, admin["publishable_key"])
    for body in minted_by_tenant:
        assert not valid(admin_client, body["secret_key"]), "a rotation by the leaked key came after the admin's"
    assert not valid(admin_client, leaked)
