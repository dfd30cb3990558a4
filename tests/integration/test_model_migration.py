"""Changing the CLIP model of a real `trooply serve` without downtime: every search answers 200 throughout, new
products land in both models, a migration killed with SIGKILL resumes where it stopped, and Celery workers run it."""

import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import two_halves_png
from tests.support.services import (
    create_tenant_cli,
    free_port,
    kill_hard,
    redis_server,
    serving,
    start_trooply,
    stop,
    trooply_env,
    wait_for_port,
)
from trooply.api.app import create_app

pytestmark = pytest.mark.integration
ADMIN_TOKEN = "admin-token-for-tests-0123456789"
TARGET = {"model": "trooply-test-tiny-b", "pretrained": "random"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def migration_env(tmp_path, **extra: str) -> dict[str, str]:
    return trooply_env(tmp_path, TROOPLY_ADMIN_TOKEN=ADMIN_TOKEN, TROOPLY_MODEL_STATE_CACHE_SECONDS="0.5",
                       TROOPLY_RATE_LIMIT_PER_TENANT="0", TROOPLY_RATE_LIMIT_PER_IP="0", **extra)


def post_products(base: str, key: str, products: list[dict]) -> None:
    accepted = httpx.post(f"{base}/v1/products", json={"products": products},
                          headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert accepted.status_code == 202 and accepted.json()["accepted"] == len(products), accepted.text


def wait_indexed(base: str, key: str, count: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        counts = httpx.get(f"{base}/v1/catalog/stats", headers={"Authorization": f"Bearer {key}"}).json()["counts"]
        if counts["indexed"] == count:
            return
        assert time.monotonic() < deadline, f"not all indexed: {counts}"
        time.sleep(0.1)


def models(base: str) -> dict:
    answer = httpx.get(f"{base}/admin/v1/models", headers=ADMIN, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_for_model(base: str, model: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while (state := models(base))["active"]["model"] != model or state["migrating"] is not None:
        assert time.monotonic() < deadline, f"no cutover to {model}: {state}"
        time.sleep(0.2)
    return state


def found_ids(base: str, publishable_key: str) -> set[str]:
    answer = httpx.post(f"{base}/v1/search/text", json={"query": "a product", "limit": 100, "threshold": 0},
                        headers={"Authorization": f"Bearer {publishable_key}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return {r["id"] for r in body["results"]} | set(body.get("gated") or [])


def product(images: ImageServer, name: str, shade: int, delay_s: float = 0.0) -> dict:
    data = two_halves_png(64, 64, (shade % 256, 30, 0), (0, 0, 255 - shade % 256))
    if delay_s:
        images.add_slow(f"/{name}.png", delay_s, data)
    else:
        images.add_image(f"/{name}.png", data)
    return {"id": name, "image_url": images.url(f"/{name}.png"), "category": "shoes"}


def test_migration_under_concurrent_searches_with_new_products(tmp_path):
    env = migration_env(tmp_path, TROOPLY_MODEL_MIGRATION_PAGE_SIZE="3", TROOPLY_MODEL_CUTOVER="manual")
    tenant = create_tenant_cli(env)
    sk, pk = tenant["secret_key"], tenant["publishable_key"]
    with ImageServer() as images, serving(env, tmp_path / "serve.log") as base:
        post_products(base, sk, [product(images, f"old-{i}", i * 9, delay_s=0.05) for i in range(24)])
        wait_indexed(base, sk, 24)
        assert models(base)["active"]["model"] == "trooply-test-tiny"

        statuses: list[int] = []
        stopping = threading.Event()

        def shopper() -> None:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {pk}"}, timeout=60) as http:
                while not stopping.is_set():
                    statuses.append(http.post("/v1/search/text", json={"query": "red shoes"}).status_code)
                    similar = http.post("/v1/search/similar", json={"product_id": "old-1"})
                    statuses.append(similar.status_code)

        shoppers = [threading.Thread(target=shopper) for _ in range(4)]
        for thread in shoppers:
            thread.start()
        try:
            started = httpx.post(f"{base}/admin/v1/models/migrate", json=TARGET, headers=ADMIN, timeout=30)
            assert started.status_code == 202, started.text
            assert started.json()["migrating"]["total"] == 24 and started.json()["migrating"]["dim"] == 40
            again = httpx.post(f"{base}/admin/v1/models/migrate", json=TARGET, headers=ADMIN, timeout=30)
            assert again.status_code == 409 and again.json()["error"]["code"] == "migration_in_progress"
            early = httpx.post(f"{base}/admin/v1/models/cutover", headers=ADMIN, timeout=30)
            assert early.status_code == 409 and early.json()["error"]["code"] == "not_ready"
            deadline = time.monotonic() + 120
            while not (progress := models(base)["migrating"])["ready"]:
                assert time.monotonic() < deadline, f"not ready: {progress}"
                time.sleep(0.2)
            assert (progress["done"], progress["total"], progress["failed"]) == (24, 24, 0)
            # Sent after every tenant was re-encoded: only ingest's second encode can put these in the new index.
            post_products(base, sk, [product(images, f"new-{i}", 100 + i * 11) for i in range(6)])
            wait_indexed(base, sk, 30)
            switched = httpx.post(f"{base}/admin/v1/models/cutover", headers=ADMIN, timeout=30)
            assert switched.status_code == 200, switched.text
            state = wait_for_model(base, TARGET["model"])
            time.sleep(1.0)  # searches go on across the switch
        finally:
            stopping.set()
            for thread in shoppers:
                thread.join(60)
        assert statuses and set(statuses) == {200}, f"{len(statuses)} searches: {sorted(set(statuses))}"
        assert state["active"]["dim"] == 40 and state["previous"]["model"] == "trooply-test-tiny"
        expected = {f"old-{i}" for i in range(24)} | {f"new-{i}" for i in range(6)}
        assert found_ids(base, pk) == expected  # every product, old and new, is in the new model's index

        rolled_back = httpx.post(f"{base}/admin/v1/models/rollback", headers=ADMIN, timeout=30).json()
        assert rolled_back["active"]["model"] == "trooply-test-tiny"
        time.sleep(1.0)  # the state cache (0.5 s) of the search path
        assert found_ids(base, pk) == expected  # the old model's vectors were kept current
        assert httpx.post(f"{base}/admin/v1/models/rollback", headers=ADMIN).json()["active"]["dim"] == 40
        cleaned = httpx.post(f"{base}/admin/v1/models/cleanup", headers=ADMIN)
        assert cleaned.status_code == 200 and cleaned.json()["previous"] is None
        none_left = httpx.post(f"{base}/admin/v1/models/rollback", headers=ADMIN)
        assert none_left.status_code == 409 and none_left.json()["error"]["code"] == "no_previous_model"
        for call in ("abort", "retry"):  # nothing to stop or retry once cut over
            nothing = httpx.post(f"{base}/admin/v1/models/{call}", headers=ADMIN)
            assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "no_migration"


def test_a_migration_killed_mid_way_resumes_after_restart(tmp_path):
    port = free_port()
    env = migration_env(tmp_path, TROOPLY_PORT=str(port), TROOPLY_MODEL_MIGRATION_PAGE_SIZE="2",
                        TROOPLY_INGEST_FETCH_CONCURRENCY="2")
    tenant = create_tenant_cli(env)
    sk, pk, base = tenant["secret_key"], tenant["publishable_key"], f"http://127.0.0.1:{port}"
    total = 16
    with ImageServer() as images:
        products = [product(images, f"p{i:02d}", i * 13, delay_s=0.3) for i in range(total)]
        first = start_trooply(["serve"], env, tmp_path / "serve-1.log")
        try:
            wait_for_port(port, 90, first)
            post_products(base, sk, products)
            wait_indexed(base, sk, total)
            assert httpx.post(f"{base}/admin/v1/models/migrate", json=TARGET, headers=ADMIN).status_code == 202
            deadline = time.monotonic() + 60
            while (progress := models(base)["migrating"])["done"] < 4:
                assert time.monotonic() < deadline, f"no progress before the crash: {progress}"
                time.sleep(0.05)
        finally:
            kill_hard(first)
        cursor, done = progress_from_db(tmp_path, tenant["tenant_id"])
        assert cursor is not None and done < total, "the crash must interrupt the migration to mean anything"
        recorded = [p["id"] for p in products if p["id"] <= cursor]

        second = start_trooply(["serve"], env, tmp_path / "serve-2.log")
        try:
            wait_for_port(port, 90, second)
            state = wait_for_model(base, TARGET["model"])
            assert state["previous"]["model"] == "trooply-test-tiny"
            assert found_ids(base, pk) == {p["id"] for p in products}
        finally:
            stop(second)
    # Pages recorded before the crash were not fetched again: once by ingest, once by the migration.
    assert [images.hits(f"/{pid}.png") for pid in recorded] == [2] * len(recorded)


def progress_from_db(data_dir, tenant_id: str) -> tuple[str | None, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{data_dir / 'trooply.db'}")
    with engine.connect() as connection:
        row = connection.execute(text("SELECT cursor, done FROM model_migration_tenants WHERE tenant_id = :t"),
                                 {"t": tenant_id}).one()
    engine.dispose()
    return row[0], row[1]


def test_the_celery_workers_run_the_migration(tmp_path):
    """The single-host shape: the API records the migration and sends each tenant's task by name; a `trooply
    worker` runs it and cuts over. (Qdrant Edge has one owning process, so the API searches once it stopped.)"""
    with redis_server() as redis_url, ImageServer() as images:
        products = [product(images, f"p{i}", i * 17) for i in range(6)]
        env = trooply_env(tmp_path, TROOPLY_REDIS_URL=redis_url, TROOPLY_MODEL_STATE_CACHE_SECONDS="0.5")
        settings = make_settings(tmp_path, redis_url=redis_url, model_state_cache_seconds=0.5)
        with TestClient(create_app(settings)) as client:
            creds = new_tenant(client)
            worker = start_trooply(["worker", "--pool", "threads", "--concurrency", "2"], env,
                                   tmp_path / "worker.log")
            try:
                job = client.post("/v1/products", json={"products": products},
                                  headers={"Authorization": f"Bearer {creds.secret_key}"}).json()
                wait_for_job(client, creds.secret_key, job["job_id"], timeout=120)
                models_service = client.app.state.container.model_migration
                assert models_service.migrate(*TARGET.values()).migrating.total == 6
                deadline = time.monotonic() + 120
                while (state := models_service.status()).migrating is not None:
                    assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
                    time.sleep(0.2)
            finally:
                stop(worker)
            assert state.active.model == TARGET["model"] and state.previous.model == "trooply-test-tiny"
            time.sleep(0.6)  # the API's state cache
            hits = client.post("/v1/search/text", json={"query": "a product", "limit": 100, "threshold": 0},
                               headers={"Authorization": f"Bearer {creds.publishable_key}"}).json()
            assert {r["id"] for r in hits["results"]} | set(hits.get("gated") or []) == {p["id"] for p in products}
