"""The single-host queue shape with real parts: redis-server, a `trooply worker` Celery process, the API
dispatching to it. Also at-least-once: a worker killed mid-ingest is replaced and every product finishes."""

import time

import redis
from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import solid_png, two_halves_png
from tests.support.services import (
    kill_hard,
    redis_server,
    start_trooply,
    stop,
    trooply_env,
)
from trooply.api.app import create_app
from trooply.tasks.names import INGEST_TASK, PURGE_TASK, SCAN_TASK
from trooply.tasks.queue import INGEST_QUEUE, CeleryDispatcher, queue_of


def worker(tmp_path, redis_url, name, queues="all"):
    # Qdrant Edge allows one owning process: a threads pool shares it (production uses the Qdrant server).
    env = trooply_env(tmp_path, TROOPLY_REDIS_URL=redis_url)
    return start_trooply(["worker", "--pool", "threads", "--concurrency", "2", "--queues", queues], env,
                         tmp_path / f"{name}.log")


def test_background_tasks_have_a_queue_and_a_worker_of_their_own(tmp_path):
    """A model migration sends a task per tenant at once: none of them may wait in front of an ingest batch."""
    with redis_server() as redis_url:
        broker = redis.Redis.from_url(redis_url)
        dispatcher = CeleryDispatcher(redis_url)
        try:
            dispatcher.send(PURGE_TASK, ["no-such-tenant"])
            dispatcher.send(SCAN_TASK, ["no-such-tenant", "no-such-scan"])
            dispatcher.send(INGEST_TASK, ["no-such-tenant", "no-such-job", []])
            background = [queue_of(PURGE_TASK), queue_of(SCAN_TASK)]  # each kind its own: neither waits for the other
            assert [broker.llen(queue) for queue in [*background, INGEST_QUEUE]] == [1, 1, 1]
            assert dispatcher.depth() == 1  # the queue-depth metric counts ingest batches alone
            consumer = worker(tmp_path, redis_url, "background", queues="background")
            try:
                deadline = time.monotonic() + 90
                while any(broker.llen(queue) for queue in background):
                    assert time.monotonic() < deadline, (tmp_path / "background.log").read_text()[-3000:]
                    time.sleep(0.2)
                assert broker.llen(INGEST_QUEUE) == 1  # left to the ingest workers
            finally:
                stop(consumer)
        finally:
            dispatcher.stop()


def test_celery_worker_ingests_what_the_api_accepts_and_survives_a_crash(tmp_path):
    with redis_server() as redis_url, ImageServer() as images:
        images.add_status("/missing.png", 404)
        images.add_flaky("/flaky.png", 1, 429, solid_png(30, 30, (9, 9, 9)))
        for i in range(30):
            images.add_slow(f"/{i}.png", 0.15, two_halves_png(64, 48, (i * 8, 40, 0), (0, 90, 255 - i * 8)))
        products = [{"id": f"p{i}", "image_url": images.url(f"/{i}.png"), "category": "shoes" if i % 2 else "bags"}
                    for i in range(30)]
        products += [{"id": "missing", "image_url": images.url("/missing.png")},
                     {"id": "flaky", "image_url": images.url("/flaky.png")}]

        settings = make_settings(tmp_path, redis_url=redis_url)
        with TestClient(create_app(settings)) as client:
            creds = new_tenant(client)
            first = worker(tmp_path, redis_url, "worker-1")
            try:
                job = client.post("/v1/products", json={"products": products}, headers=auth(creds.secret_key)).json()
                deadline = time.monotonic() + 90
                while client.get(f"/v1/jobs/{job['job_id']}",
                                 headers=auth(creds.secret_key)).json()["counts"]["indexed"] < 4:
                    assert time.monotonic() < deadline, (tmp_path / "worker-1.log").read_text()[-3000:]
                    time.sleep(0.1)
            finally:
                kill_hard(first)
            assert client.get(f"/v1/jobs/{job['job_id']}",
                              headers=auth(creds.secret_key)).json()["counts"]["pending"] > 0

            second = worker(tmp_path, redis_url, "worker-2")
            try:
                done = wait_for_job(client, creds.secret_key, job["job_id"], timeout=120)
                # A duplicate scan runs on the worker too (the API only writes and reads its SQL row).
                scan = client.post("/v1/duplicates/scan", json={"threshold": 0.999}, headers=auth(creds.secret_key))
                while (found := client.get(f"/v1/duplicates/scan/{scan.json()['scan_id']}",
                                           headers=auth(creds.secret_key)).json())["status"] != "completed":
                    assert found["status"] in ("pending", "running") and time.monotonic() < deadline + 120, found
                    time.sleep(0.1)
                assert found["products_scanned"] == 31 and isinstance(found["groups"], list)
            finally:
                stop(second)
            assert done["counts"] == {"pending": 0, "indexed": 31, "failed": 1}
            assert done["errors"] == [{"product_id": "missing", "code": "image_not_found",
                                       "message": done["errors"][0]["message"]}]

            # The worker has released the index: the API opens it and finds what the worker stored.
            hits = client.post("/v1/search/text", json={"query": "shoe", "limit": 100, "filters": {"category": "shoes"},
                                                                "profile": "footwear"},
                               headers=auth(creds.publishable_key)).json()
            assert sorted(r["id"] for r in hits["results"]) == sorted(f"p{i}" for i in range(1, 30, 2))
            assert client.get("/readyz").json()["checks"]["queue"] == "ok"
