"""A model from a `local-dir:` folder (built here: a SigLIP-like tiny config, 48-d, which no shipped config is)
through the whole service: /readyz names it, products are ingested and searched in its space, /v1/embed scores
text with its own sigmoid, `trooply eval` runs on it, and a service started with another model configured keeps it
until a model migration. Random weights: behaviour only, no quality."""

import io
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import two_halves_png
from tests.support.models import CONTEXT_LENGTH, DIM, write_local_dir_model
from trooply.api.app import create_app
from trooply.tools.evaluation import run_benchmark


def product_png(i: int) -> bytes:
    return two_halves_png(80, 80, (i * 30, 90, 40), (10, 250 - i * 30, 200))


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return write_local_dir_model(tmp_path_factory.mktemp("models") / "shop-siglip")


@pytest.fixture(scope="module")
def shop(tmp_path_factory, model):
    settings = make_settings(tmp_path_factory.mktemp("local-dir"), clip_model=model, clip_pretrained="openai")
    with TestClient(create_app(settings)) as client, ImageServer() as server:
        products = []
        for i in range(6):
            server.add_image(f"/p{i}.png", product_png(i))
            products.append({"id": f"p{i}", "image_url": server.url(f"/p{i}.png")})
        creds = new_tenant(client)
        job = client.post("/v1/products", json={"products": products}, headers=auth(creds.secret_key)).json()
        job = wait_for_job(client, creds.secret_key, job["job_id"])
        assert job["counts"]["indexed"] == 6, job
        yield client, server, creds


def test_readyz_reports_the_model_where_it_came_from_and_how_it_runs(shop, model):
    client, _, _ = shop
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    clip = body["models"]["clip"]
    folder = model.removeprefix("local-dir:")
    assert clip["loaded"] is True and clip["model"] == model and clip["dim"] == DIM
    assert clip["loaded_from"] == f"{folder}/open_clip_pytorch_model.bin"
    assert clip["device"] == "cpu" and clip["precision"] == "fp32" and clip["context_length"] == CONTEXT_LENGTH
    assert clip["space"].startswith("shop-siglip__local-dir-")
    assert clip["scoring"] == {"kind": "sigmoid", "logit_scale": 10.0, "logit_bias": -10.0}


def test_products_are_indexed_and_searched_in_its_space(shop):
    client, server, creds = shop
    container = client.app.state.container
    tenant = creds.tenant_id
    stored = container.index.retrieve(tenant, ["p2"])[0]
    assert stored.vector.shape == (DIM,)
    key = auth(creds.publishable_key)
    by_url = client.post("/v1/search/url", json={"image_url": server.url("/p2.png"), "limit": 3}, headers=key)
    assert by_url.status_code == 200, by_url.text
    assert by_url.json()["results"][0]["id"] == "p2"  # its own picture, the same 48-d vector
    upload = client.post("/v1/search/image", files={"file": ("p4.png", product_png(4))}, data={"limit": "2"},
                         headers=key).json()
    assert upload["results"][0]["id"] == "p4"
    text = client.post("/v1/search/text", json={"query": "a green and blue shirt", "limit": 6}, headers=key).json()
    assert len(text["results"]) == 6 and 0 < text["profile_confidence"] <= 1


def test_embed_gives_its_vectors_and_scores_text_with_its_sigmoid(shop):
    client, _, creds = shop
    encoder = client.app.state.container.encoder
    picture = Image.open(io.BytesIO(product_png(1))).convert("RGB")
    body = client.post("/v1/embed", files={"file": ("p1.png", product_png(1))},
                       data={"bounding_boxes": "[[0, 0, 80, 80], [0, 0, 40, 80]]",
                             "text": '["a green shirt", "red shoes"]', "with_tag": "true"},
                       headers=auth(creds.publishable_key))
    assert body.status_code == 200, body.text
    body = body.json()
    vectors = np.asarray(body["embeddings"])
    assert vectors.shape == (2, DIM)
    np.testing.assert_allclose(vectors[0], encoder.encode_images([picture])[0], atol=1e-4)
    cosines = vectors @ encoder.encode_texts(["a green shirt", "red shoes"]).T
    expected = 1 / (1 + np.exp(-(10.0 * cosines - 10.0)))  # σ(scale · cos + bias), the model's own
    np.testing.assert_allclose(body["text_relevance_scores"], expected, atol=1e-4)
    assert all(0 <= confidence <= 1 for _, confidence in body["tags"])


def test_eval_runs_on_it(tmp_path, model):
    for name, seed in (("shirts", 1), ("shoes", 2)):
        for i in range(2):  # each product's two images are one picture
            (tmp_path / "shop" / name).mkdir(parents=True, exist_ok=True)
            (tmp_path / "shop" / name / f"{i}.png").write_bytes(product_png(seed))
    report = run_benchmark(make_settings(tmp_path / "unused", clip_model=model), tmp_path / "shop", concurrency=2)
    assert report["_model"]["model"] == model and report["_model"]["dim"] == DIM
    assert report["_catalogue"]["indexed"] == 4 and report["all"]["queries"] == 4
    assert report["all"]["cosine"]["recall@1"] == 1.0


def test_a_restart_on_another_model_keeps_the_recorded_one_until_a_migration(tmp_path, model, caplog):
    with ImageServer() as server:
        server.add_image("/p.png", product_png(3))
        settings = make_settings(tmp_path, clip_model=model)
        with TestClient(create_app(settings)) as client:
            creds = new_tenant(client)
            job = client.post("/v1/products", json={"id": "p", "image_url": server.url("/p.png")},
                              headers=auth(creds.secret_key)).json()
            wait_for_job(client, creds.secret_key, job["job_id"])
        # The same data served with the 64-d test model configured: the database's model stays (else a restart
        # would undo a cutover), with a warning; a migration is how the model changes.
        with TestClient(create_app(make_settings(tmp_path, model_state_cache_seconds=0.2))) as client:
            container = client.app.state.container
            assert container.encoder.space.size == DIM and "is ignored: the active model is" in caplog.text
            found = client.post("/v1/search/text", json={"query": "shirt"}, headers=auth(creds.publishable_key))
            assert found.status_code == 200 and [r["id"] for r in found.json()["results"]] == ["p"]
            container.model_migration.migrate("trooply-test-tiny", "random")
            deadline = time.monotonic() + 60
            while container.model_migration.status().migrating is not None:
                assert time.monotonic() < deadline, container.model_migration.status()
                time.sleep(0.05)
            time.sleep(0.3)  # the state cache
            assert container.encoder.space.size == 64
            found = client.post("/v1/search/text", json={"query": "shirt"}, headers=auth(creds.publishable_key))
            assert found.status_code == 200 and [r["id"] for r in found.json()["results"]] == ["p"]
