"""The queue shape on ONNX Runtime: the API exports at its start, a `trooply worker` on the same data dir reuses
that export, and what the worker stores is found by the API's own queries."""

import json

from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import two_halves_png
from tests.support.services import redis_server, start_trooply, stop, trooply_env
from trooply.api.app import create_app


def test_a_celery_worker_serves_the_same_onnx_export_as_the_api(tmp_path):
    with redis_server() as redis_url, ImageServer() as images:
        for i in range(4):
            images.add_image(f"/{i}.png", two_halves_png(64, 48, (i * 60, 40, 0), (0, 90, 255 - i * 60)))
        products = [{"id": f"p{i}", "image_url": images.url(f"/{i}.png")} for i in range(4)]
        settings = make_settings(tmp_path, redis_url=redis_url, clip_runtime="onnx")
        with TestClient(create_app(settings)) as client:
            creds = new_tenant(client)
            env = trooply_env(tmp_path, TROOPLY_REDIS_URL=redis_url, TROOPLY_CLIP_RUNTIME="onnx",
                              TROOPLY_LOG_LEVEL="INFO")
            worker = start_trooply(["worker", "--pool", "threads", "--concurrency", "2"], env, tmp_path / "worker.log")
            try:
                job = client.post("/v1/products", json={"products": products}, headers=auth(creds.secret_key)).json()
                done = wait_for_job(client, creds.secret_key, job["job_id"], timeout=120)
            finally:
                stop(worker)
            assert done["counts"]["indexed"] == 4, done["errors"]
            log = (tmp_path / "worker.log").read_text()
            assert "runs on ONNX Runtime fp32" in log and "export reused" in log  # the API's export
            assert "exported CLIP model" not in log
            # /readyz opens the embedded index, which the worker held until it stopped: asked last.
            api_runtime = client.get("/readyz").json()["models"]["clip"]["runtime"]
            assert api_runtime["runtime"] == "onnx" and api_runtime["export"].startswith("exported in")
            # The worker's vectors (its ONNX session) and the API's query vectors (its own) share one space.
            for i in range(4):
                hits = client.post("/v1/search/url", json={"image_url": images.url(f"/{i}.png"), "limit": 1},
                                   headers=auth(creds.publishable_key)).json()
                assert hits["results"][0]["id"] == f"p{i}", json.dumps(hits)[:500]
