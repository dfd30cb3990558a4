"""Ingest never strands or wrongly indexes a product: one product's bug fails that product alone, and a
product deleted at any moment of its ingest never comes back in results."""

import logging
import threading
import time

import pytest
from fastapi.testclient import TestClient

import trooply.catalog.ingest as ingest_module
from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from trooply.api.app import create_app


@pytest.fixture
def shop(tmp_path):
    with TestClient(create_app(make_settings(tmp_path))) as client, ImageServer() as server:
        yield client, server, new_tenant(client)


def post(client, key, products) -> str:
    response = client.post("/v1/products", json={"products": products}, headers=auth(key))
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def found_ids(client, key) -> list[str]:
    body = client.post("/v1/search/text", json={"query": "product", "limit": 100}, headers=auth(key)).json()
    return [r["id"] for r in body["results"]] + body["gated"]


def test_an_unexpected_error_fails_that_product_alone(shop, monkeypatch, caplog):
    client, server, keys = shop
    for i, width in enumerate((40, 77, 50)):
        server.add_image(f"/{i}.png", solid_png(width, 40, (30 * i, 90, 200)))
    real_palette = ingest_module.colour_palette

    def palette_with_a_bug(image):
        if image.width == 77:
            raise RuntimeError("a bug met by one image")
        return real_palette(image)

    monkeypatch.setattr(ingest_module, "colour_palette", palette_with_a_bug)
    with caplog.at_level(logging.ERROR, logger="trooply.catalog.ingest"):
        job = wait_for_job(client, keys.secret_key,
                           post(client, keys.secret_key, [{"id": f"p{i}", "image_url": server.url(f"/{i}.png")}
                                                          for i in range(3)]))
    assert job["counts"] == {"pending": 0, "indexed": 2, "failed": 1}
    assert [(e["product_id"], e["code"]) for e in job["errors"]] == [("p1", "internal_error")]
    assert any(record.exc_info and "p1" in record.getMessage() for record in caplog.records)
    assert sorted(found_ids(client, keys.publishable_key)) == ["p0", "p2"]


def test_a_product_deleted_while_its_image_is_fetched_is_not_indexed(shop):
    client, server, keys = shop
    server.add_slow("/slow.png", 1.0, solid_png(40, 40))
    server.add_image("/fast.png", solid_png(40, 40, (0, 0, 255)))
    job_id = post(client, keys.secret_key, [{"id": "gone", "image_url": server.url("/slow.png")},
                                            {"id": "stays", "image_url": server.url("/fast.png")}])
    deadline = time.monotonic() + 10
    while server.hits("/slow.png") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.delete("/v1/products/gone", headers=auth(keys.secret_key)).status_code == 204
    job = wait_for_job(client, keys.secret_key, job_id)
    assert job["counts"] == {"pending": 0, "indexed": 1, "failed": 1}
    assert [(e["product_id"], e["code"]) for e in job["errors"]] == [("gone", "product_deleted")]
    assert found_ids(client, keys.publishable_key) == ["stays"]


def test_a_delete_racing_the_vector_write_leaves_no_orphan(shop, monkeypatch):
    client, server, keys = shop
    server.add_image("/a.png", solid_png(40, 40))
    index = client.app.state.container.index.active  # the active model's index, which ingest writes
    real_upsert, deleter = index.upsert, []

    def upsert_while_a_delete_arrives(tenant_id, points):
        # The delete is sent after the ingest re-read the product and before its vector is written.
        thread = threading.Thread(target=lambda: client.delete("/v1/products/racy", headers=auth(keys.secret_key)))
        thread.start()
        deleter.append(thread)
        time.sleep(0.3)
        real_upsert(tenant_id, points)

    monkeypatch.setattr(index, "upsert", upsert_while_a_delete_arrives)
    job_id = post(client, keys.secret_key, [{"id": "racy", "image_url": server.url("/a.png")}])
    deadline = time.monotonic() + 30
    while not deleter and time.monotonic() < deadline:
        time.sleep(0.01)
    deleter[0].join(30)
    wait_for_job(client, keys.secret_key, job_id)
    assert client.get("/v1/products/racy", headers=auth(keys.secret_key)).status_code == 404
    assert found_ids(client, keys.publishable_key) == []


def test_a_delete_landing_while_the_batch_records_its_outcome_still_completes_the_job(shop, monkeypatch):
    client, server, keys = shop
    server.add_image("/a.png", solid_png(40, 40))
    real_mark_indexed, deleter = ingest_module.IngestPipeline._mark_indexed, []

    def mark_while_a_delete_arrives(item, record, image):
        # The vector is written and the outcome read; the delete gets a second to land before the commit.
        thread = threading.Thread(target=lambda: client.delete("/v1/products/late", headers=auth(keys.secret_key)))
        thread.start()
        deleter.append(thread)
        thread.join(1.0)
        real_mark_indexed(item, record, image)

    monkeypatch.setattr(ingest_module.IngestPipeline, "_mark_indexed", staticmethod(mark_while_a_delete_arrives))
    job = wait_for_job(client, keys.secret_key, post(client, keys.secret_key,
                                                     [{"id": "late", "image_url": server.url("/a.png")}]), 30)
    deleter[0].join(30)
    assert job["counts"]["pending"] == 0
    assert client.get("/v1/products/late", headers=auth(keys.secret_key)).status_code == 404
    assert found_ids(client, keys.publishable_key) == []
