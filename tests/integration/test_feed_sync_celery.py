"""Feed syncs in the Celery shape with real parts: redis-server, a `trooply worker` process running the sync and
the ingest, the API queueing them, and the task `trooply beat` sends to queue the due scheduled feeds."""

import time
from datetime import timedelta

from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.integration.test_celery_redis import worker
from tests.support.feed_server import FeedServer
from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from tests.support.services import redis_server, stop
from trooply.api.app import create_app
from trooply.db import utcnow
from trooply.feeds.models import Feed
from trooply.tasks.names import FEEDS_DUE_TASK
from trooply.tasks.queue import CeleryDispatcher


def feed_of(images: ImageServer, ids: list[str]) -> str:
    items = "".join(f"<item><g:id>{pid}</g:id><g:title>Bag {pid}</g:title><g:price>9.00 EUR</g:price>"
                    f"<g:image_link>{images.url(f'/{pid}.png')}</g:image_link></item>" for pid in ids)
    return f'<rss xmlns:g="http://base.google.com/ns/1.0"><channel>{items}</channel></rss>'


def finished_syncs(client: TestClient, key: str, feed_id: str, count: int, log) -> list[dict]:
    deadline = time.monotonic() + 120
    while True:
        feed = client.get(f"/v1/feeds/{feed_id}", headers=auth(key)).json()
        done = [sync for sync in feed["syncs"] if sync["status"] in ("completed", "failed")]
        if len(done) >= count and not feed["syncing"]:
            for job_id in feed["syncs"][0]["jobs"]:
                wait_for_job(client, key, job_id, timeout=120)
            return feed["syncs"]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def test_a_worker_syncs_the_feed_and_beats_task_queues_the_due_one(tmp_path):
    with redis_server() as redis_url, ImageServer() as images, FeedServer() as feed:
        for n, pid in enumerate(("a", "b")):
            images.add_image(f"/{pid}.png", solid_png(40, 40, (200, 40 * n, 30)))
        feed.publish(feed_of(images, ["a"]))
        with TestClient(create_app(make_settings(tmp_path, redis_url=redis_url))) as client:
            key = new_tenant(client).secret_key
            consumer = worker(tmp_path, redis_url, "worker")
            dispatcher = CeleryDispatcher(redis_url)
            try:
                feed_id = client.post("/v1/feeds", headers=auth(key), json={"url": feed.url(),
                                                                           "schedule": "hourly"}).json()["id"]
                [first] = finished_syncs(client, key, feed_id, 1, tmp_path / "worker.log")
                assert (first["status"], first["counts"]["added"]) == ("completed", 1), first
                assert client.get("/v1/products/a", headers=auth(key)).json()["status"] == "indexed"

                feed.publish(feed_of(images, ["a", "b"]))
                with client.app.state.container.db.session() as session:  # the hour has passed
                    session.get(Feed, feed_id).next_sync_at = utcnow() - timedelta(seconds=1)
                dispatcher.send(FEEDS_DUE_TASK, [])  # as `trooply beat` does every TROOPLY_FEED_SCHEDULE_CHECK_SECONDS
                latest = finished_syncs(client, key, feed_id, 2, tmp_path / "worker.log")[0]
                assert (latest["trigger"], latest["counts"]["added"], latest["counts"]["unchanged"]) == (
                    "schedule", 1, 1), latest
                assert client.get("/v1/products/b", headers=auth(key)).json()["status"] == "indexed"
            finally:
                dispatcher.stop()
                stop(consumer)
