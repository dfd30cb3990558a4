"""Shared fixtures: isolated settings on the tiny random-weight model, an app, tenants and helpers."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trooply.api.app import create_app
from trooply.config import Settings
from trooply.tenancy.service import TenantCredentials

INTEGRATION_TESTS = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration/ starts real services: `-m "not integration"` leaves it out."""
    for item in items:
        if item.path.is_relative_to(INTEGRATION_TESTS):
            item.add_marker(pytest.mark.integration)


def make_settings(data_dir: Path, **overrides) -> Settings:
    values = dict(
        data_dir=data_dir, clip_model="trooply-test-tiny", clip_pretrained="random",
        # The address rule stays on; only the test server's exact address is exempt.
        fetch_allowed_networks=["127.0.0.1/32"], fetch_connect_timeout=1.0, fetch_read_timeout=1.0,
        fetch_deadline=3.0, ingest_retry_base_delay=0.05, ingest_workers=2, encode_batch_size=8,
        # Tests send bursts from one address and tenant; tests/api/test_limits.py turns the limits on.
        rate_limit_per_ip=0, rate_limit_per_tenant=0,
        # PyTorch: tests compare with encoders they build themselves, and an app exports no ONNX copy per test
        # (tests/unit/vision/test_clip_runtime.py and tests/api/test_readyz_clip_runtime.py cover the ONNX runtimes).
        clip_runtime="torch",
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def new_tenant(client: TestClient, name: str = "acme", plan: str = "free") -> TenantCredentials:
    return client.app.state.container.tenants.create_tenant(name, plan)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_for_job(client: TestClient, key: str, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
        if job["status"] == "completed":
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not complete within {timeout}s: {job}")
