"""With Redis, API processes share each rate limit: two apps on one real redis-server refuse together."""

import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant
from tests.support.services import redis_server
from trooply.api.app import create_app


@pytest.fixture
def two_apps(tmp_path: Path):
    """open(**limits) -> two apps sharing one Redis and one database, as two API processes would."""
    with redis_server() as redis_url, ExitStack() as stack:
        def open_apps(**limits) -> list[TestClient]:
            shared = dict(redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'shared.db'}", **limits)
            return [stack.enter_context(TestClient(create_app(make_settings(tmp_path / name, **shared))))
                    for name in ("a", "b")]

        yield open_apps


def test_the_address_limit_is_shared_by_api_processes(two_apps):
    # 0.5 a second with a 4 s burst: 2 requests at once, then one every 2 s.
    a, b = two_apps(rate_limit_per_ip=0.5, rate_limit_burst_seconds=4)
    assert [a.get("/v1/products").status_code, b.get("/v1/products").status_code] == [401, 401]
    refusals = [a.get("/v1/products"), b.get("/v1/products")]
    assert [r.status_code for r in refusals] == [429, 429]
    assert all(r.json()["error"]["code"] == "rate_limited" for r in refusals)
    retry_after = int(refusals[-1].headers["Retry-After"])
    assert 1 <= retry_after <= 2
    time.sleep(retry_after)
    assert b.get("/v1/products").status_code == 401  # the wait it named was enough
    assert a.get("/readyz").status_code == 200  # probes are never limited


def test_the_tenant_limit_is_shared_by_api_processes(two_apps):
    a, b = two_apps(rate_limit_per_tenant=None, free_plan_rate_limit=0.5, rate_limit_burst_seconds=4)
    key = auth(new_tenant(a).secret_key)
    assert a.get("/v1/products", headers=key).status_code == b.get("/v1/products", headers=key).status_code == 200
    refused = b.get("/v1/products", headers=key)
    assert refused.status_code == 429 and refused.json()["error"]["details"]["limit"] == "tenant"
    assert a.get("/v1/products", headers=auth(new_tenant(a, "other").secret_key)).status_code == 200
