"""Ingest as a service (the pipeline an ingest task runs; real SQLite, the real index, the tiny model, images from
a real HTTP server on 127.0.0.1): what it stores, what it fails, what it skips."""

import numpy as np
import pytest

from tests.conftest import make_settings
from tests.support.image_server import ImageServer
from tests.support.images import product_png
from trooply.catalog.schemas import ProductIn
from trooply.container import Container
from trooply.vision.decode import decode_image


@pytest.fixture
def shop(tmp_path):
    container = Container(make_settings(tmp_path))
    container.prepare()
    tenant = container.tenants.create_tenant("acme", "free").tenant_id
    with ImageServer() as images:
        yield container, tenant, images
    container.stop()


def ingest(container: Container, tenant: str, products: list[ProductIn]):
    """Submits the products (queued, never run: the pool is not started) and runs their task here."""
    submission = container.catalog.submit(tenant, products)
    return container.run_ingest(tenant, submission.job_id, [p.id for p in products])


def test_a_fetched_image_is_encoded_and_stored_with_its_payload_and_a_missing_one_fails_alone(shop):
    container, tenant, images = shop
    red = product_png("circle", (200, 30, 30))
    images.add_image("/red.png", red)
    images.add_status("/gone.png", 404)
    outcome = ingest(container, tenant, [ProductIn(id="red", image_url=images.url("/red.png"), brand="acme"),
                                         ProductIn(id="gone", image_url=images.url("/gone.png"))])
    assert (outcome.indexed, outcome.failed, outcome.retry_ids) == (1, 1, [])
    assert container.catalog.get(tenant, "red").status == "indexed"
    gone = container.catalog.get(tenant, "gone")
    assert (gone.status, gone.error_code) == ("failed", "image_not_found")
    (point,) = container.index.retrieve(tenant, ["red"])
    expected = container.encoder.encode_images([decode_image(red, 40_000_000, 1024, 2).image])[0]
    assert np.allclose(point.vector, expected, atol=1e-5)
    assert point.payload["brand"] == "acme" and container.index.count(tenant) == 1


def test_a_product_whose_image_did_not_change_is_not_encoded_again_but_gets_its_new_metadata(shop):
    container, tenant, images = shop
    images.add_image("/red.png", product_png("circle", (200, 30, 30)))
    ingest(container, tenant, [ProductIn(id="red", image_url=images.url("/red.png"), brand="acme")])
    (before,) = container.index.retrieve(tenant, ["red"])
    encoded = container.encoder.images_encoded
    outcome = ingest(container, tenant, [ProductIn(id="red", image_url=images.url("/red.png"), brand="other")])
    assert outcome.indexed == 1 and container.encoder.images_encoded == encoded, "the stored vector is current"
    (after,) = container.index.retrieve(tenant, ["red"])
    assert np.array_equal(after.vector, before.vector) and after.payload["brand"] == "other"


def test_a_product_deleted_while_its_batch_was_queued_gets_no_vector(shop):
    container, tenant, images = shop
    images.add_image("/red.png", product_png("circle", (200, 30, 30)))
    submission = container.catalog.submit(tenant, [ProductIn(id="red", image_url=images.url("/red.png"))])
    container.catalog.delete(tenant, "red")
    container.run_ingest(tenant, submission.job_id, ["red"])
    assert container.index.count(tenant) == 0
