"""Ingest while a model migration runs, through the app on real parts (Qdrant Edge, SQLite, the tiny models):
new products go to both models' indexes, and a failure of the second model never fails the product."""

import time

from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import two_halves_png
from trooply.api.app import create_app

TARGET = ("trooply-test-tiny-b", "random")


def wait_ready(container, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (migrating := container.models.status().migrating).ready:
        assert time.monotonic() < deadline, migrating
        time.sleep(0.05)
    return migrating


def post(client, key: str, server: ImageServer, product_id: str, shade: int) -> None:
    server.add_image(f"/{product_id}.png", two_halves_png(48, 48, (shade, 0, 0), (0, 0, 255 - shade)))
    job = client.post("/v1/products", json={"id": product_id, "image_url": server.url(f"/{product_id}.png")},
                      headers=auth(key)).json()
    assert wait_for_job(client, key, job["job_id"])["counts"]["indexed"] == 1


def test_products_ingested_during_a_migration_reach_both_models_even_when_the_second_fails(tmp_path):
    settings = make_settings(tmp_path, model_cutover="manual", model_state_cache_seconds=0.1)
    with ImageServer() as server, TestClient(create_app(settings)) as client:
        container = client.app.state.container
        creds = new_tenant(client)
        post(client, creds.secret_key, server, "before", 10)
        container.models.migrate(*TARGET)
        wait_ready(container)
        state = container.models.read()
        target_index = container.index.of(state.target.space)

        post(client, creds.secret_key, server, "during", 90)  # after the tenant was re-encoded: ingest's doing
        assert {p.product_id for p in target_index.retrieve(creds.tenant_id, ["before", "during"])} == {
            "before", "during"}

        # The second model goes away mid-migration: the product is still indexed for the active model.
        container.runtime.clip_for(*TARGET).close()
        post(client, creds.secret_key, server, "broken", 170)
        assert [p.product_id for p in container.index.retrieve(creds.tenant_id, ["broken"])] == ["broken"]
        assert target_index.retrieve(creds.tenant_id, ["broken"]) == []
        # Counted, and tried again by the tenant's task with the model loaded afresh.
        container.runtime.release_clips({(state.active.model, state.active.pretrained)})
        migrating = wait_ready(container)
        assert migrating.failed == 0 and migrating.done == migrating.total == 3
        assert [p.product_id for p in target_index.retrieve(creds.tenant_id, ["broken"])] == ["broken"]
