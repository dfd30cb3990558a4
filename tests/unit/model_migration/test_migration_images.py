"""A model migration with several images per product: the re-encode gives the target model every image the
active one has, in the same rows, so search on the new model still finds a product by any of its views; a
product ingested during the migration reaches the target whole too."""

import io

from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import product_png
from tests.support.migrations import wait_ready
from trooply.api.app import create_app

TARGET = ("trooply-test-tiny-b", "random")
VIEWS = {"front": product_png("shoe", (200, 30, 30)), "side": product_png("bag", (30, 30, 200)),
         "back": product_png("lamp", (30, 160, 40)), "top": product_png("shirt", (240, 200, 0)),
         "strap": product_png("watch", (90, 0, 120))}


def test_the_migration_re_encodes_every_image_of_every_product(tmp_path):
    settings = make_settings(tmp_path, model_cutover="manual", model_state_cache_seconds=0.1)
    with ImageServer() as server, TestClient(create_app(settings)) as client:
        for name, data in VIEWS.items():
            server.add_image(f"/{name}.png", data)
        container = client.app.state.container
        creds = new_tenant(client, plan="pro")

        def post(product_id: str, *names: str) -> None:
            body = {"id": product_id, "images": [server.url(f"/{name}.png") for name in names]}
            job = client.post("/v1/products", json=body, headers=auth(creds.secret_key)).json()
            assert wait_for_job(client, creds.secret_key, job["job_id"])["counts"]["indexed"] == 1

        post("shoe", "front", "side", "back")
        container.model_migration.migrate(*TARGET)
        wait_ready(container)
        state = container.model_migration.read()
        target = container.index.index_of(state.target.space)
        post("hat", "top", "strap")  # after the tenant's re-encode: ingest gives the target model every image
        migrating = wait_ready(container)
        assert migrating.failed == 0
        encoder = container.runtime.clip_for(*TARGET)
        for product_id, names in (("shoe", ("front", "side", "back")), ("hat", ("top", "strap"))):
            (stored,) = target.retrieve(creds.tenant_id, [product_id])
            assert stored.images is not None and len(stored.images) == len(names)
            for row, name in enumerate(names):  # each row is its own image, encoded by the new model
                expected = encoder.encode_images([Image.open(io.BytesIO(VIEWS[name])).convert("RGB")])[0]
                assert float(expected @ stored.images[row]) > 0.99, (product_id, name)
            (hit, *_) = target.query(creds.tenant_id, stored.images[-1], 1)
            assert (hit.product_id, hit.image_position) == (product_id, len(names) - 1)
