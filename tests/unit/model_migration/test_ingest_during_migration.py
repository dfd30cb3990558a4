"""Ingest while a model migration runs, through the app on real parts (Qdrant Edge, SQLite, the tiny models):
new products go to both models' indexes, and a failure of the second model never fails the product."""

import time

from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import two_halves_png
from tests.support.migrations import wait_ready
from tests.support.models import write_local_dir_model
from trooply.api.app import create_app
from trooply.catalog.ingest import IngestPipeline
from trooply.spaces.writes import SpaceBatch, SpaceWriter

TARGET = ("trooply-test-tiny-b", "random")


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
        container.model_migration.migrate(*TARGET)
        wait_ready(container)
        state = container.model_migration.read()
        target_index = container.index.index_of(state.target.space)

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


def test_a_target_model_that_cannot_load_fails_only_the_migration(tmp_path):
    model = write_local_dir_model(tmp_path / "models" / "shop-siglip")
    settings = make_settings(tmp_path / "data", model_cutover="manual", model_state_cache_seconds=0.1)
    with ImageServer() as server, TestClient(create_app(settings)) as client:
        container = client.app.state.container
        creds = new_tenant(client)
        container.model_migration.migrate(model, "openai")
        (tmp_path / "models" / "shop-siglip" / "open_clip_pytorch_model.bin").unlink()  # its weights are gone
        post(client, creds.secret_key, server, "shoe", 40)
        assert [p.product_id for p in container.index.retrieve(creds.tenant_id, ["shoe"])] == ["shoe"]
        assert container.model_migration.status().migrating.failed == 1  # the migration tries it again


class MigrationLandsMidBatch:
    """Ingest's writer, with `trooply models migrate` landing right after the batch chose its spaces."""

    def __init__(self, writer: SpaceWriter, migrate) -> None:
        self._writer, self._migrate = writer, migrate
        self.spaces = writer.spaces
        self._landed = False

    def batch(self) -> SpaceBatch:
        chosen = self._writer.batch()
        if not self._landed:
            self._landed = True
            self._migrate()
        return chosen


def test_a_product_encoded_while_the_migration_began_is_left_to_the_migration(tmp_path):
    settings = make_settings(tmp_path, model_cutover="manual", model_state_cache_seconds=0.1)
    with ImageServer() as server, TestClient(create_app(settings)) as client:
        container = client.app.state.container
        container.dispatcher.stop()  # this test runs the batch itself
        creds = new_tenant(client)
        server.add_image("/shoe.png", two_halves_png(48, 48, (40, 0, 0), (0, 0, 215)))
        job = client.post("/v1/products", json={"id": "shoe", "image_url": server.url("/shoe.png")},
                          headers=auth(creds.secret_key)).json()
        writer = MigrationLandsMidBatch(container.pipeline.writer, lambda: container.model_migration.migrate(*TARGET))
        pipeline = IngestPipeline(container.db, writer, container.classifier, container.fetcher, settings)
        try:
            assert pipeline.process(creds.tenant_id, job["job_id"], ["shoe"]).indexed == 1
        finally:
            pipeline.close()
        assert container.model_migration.status().migrating.failed == 1  # the migration tries it again


def test_a_product_sent_again_with_a_working_image_clears_its_failure_and_the_cutover_follows(tmp_path):
    settings = make_settings(tmp_path, model_state_cache_seconds=0.1)  # the automatic cutover
    with ImageServer() as server, TestClient(create_app(settings)) as client:
        container = client.app.state.container
        creds = new_tenant(client)
        post(client, creds.secret_key, server, "shoe", 40)
        post(client, creds.secret_key, server, "boot", 80)
        server.add_status("/shoe.png", 404)  # gone from the merchant's server before the migration fetches it
        container.model_migration.migrate(*TARGET)
        held = wait_ready(container)
        assert (held.failed, held.done, held.total) == (1, 1, 2)
        assert container.model_migration.status().migrating is not None  # the failure holds the automatic cutover

        post(client, creds.secret_key, server, "shoe", 120)  # the merchant fixes the image and sends it again
        deadline = time.monotonic() + 30
        while (state := container.model_migration.status()).migrating is not None:
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
        assert state.active.model == TARGET[0]
        target_index = container.index.index_of(container.model_migration.read().active.space)
        assert {p.product_id for p in target_index.retrieve(creds.tenant_id, ["shoe", "boot"])} == {"shoe", "boot"}
