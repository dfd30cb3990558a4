"""Tenants take turns on the Celery shape too, with real parts: redis-server, a `trooply worker` process, the API
sending to it. One tenant's big import no longer holds another tenant's next batch behind all of its own."""

from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant, wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import two_halves_png
from tests.support.services import redis_server, start_trooply, stop, trooply_env
from trooply.api.app import create_app
from trooply.catalog.ingest import INGEST_TASK
from trooply.tasks.fair_share import FairLines


def test_lines_are_served_in_turn_and_a_token_delivered_again_runs_the_task_it_claimed():
    with redis_server() as redis_url:
        lines = FairLines(redis_url)
        try:
            for tenant, count in (("a", 4), ("b", 2), ("c", 1)):
                for number in range(count):
                    lines.push("q", INGEST_TASK, [tenant, f"job-{tenant}", [f"{tenant}{number}"]])
            assert lines.waiting("q", "a") == 4
            first = lines.claim("q", "token-1")
            assert first == (INGEST_TASK, ["a", "job-a", ["a0"]])
            assert lines.claim("q", "token-1") == first  # the same token again (a worker lost mid-task)
            lines.release("token-1")
            order = [lines.claim("q", f"token-{n}") for n in range(2, 8)]
            assert [task[1][2][0] for task in order if task] == ["b0", "c0", "a1", "b1", "a2", "a3"]
            assert lines.claim("q", "token-8") is None and lines.waiting("q", "a") == 0
            lines.push("other", INGEST_TASK, ["a", "j", []])  # each Celery queue has lines of its own
            assert lines.claim("q", "token-9") is None and lines.waiting("other", "a") == 1
        finally:
            lines.close()


def test_another_tenants_batch_runs_next_not_after_a_big_import(tmp_path):
    """Tenant A queues 16 one-product batches, then tenant B one: with one worker, B's batch runs second (FIFO ran
    it seventeenth)."""
    with redis_server() as redis_url, ImageServer() as images:
        for i in range(17):
            images.add_slow(f"/{i}.png", 0.2, two_halves_png(48, 40, (i * 12, 40, 0), (0, 90, 200)))
        settings = make_settings(tmp_path, redis_url=redis_url, encode_batch_size=1)
        with TestClient(create_app(settings)) as client:
            big, small = new_tenant(client, "big"), new_tenant(client, "small")
            big_job = client.post("/v1/products", headers=auth(big.secret_key), json={"products": [
                {"id": f"a{i}", "image_url": images.url(f"/{i}.png")} for i in range(16)]}).json()["job_id"]
            small_job = client.post("/v1/products", headers=auth(small.secret_key), json={"products": [
                {"id": "b0", "image_url": images.url("/16.png")}]}).json()["job_id"]
            # One task at a time, started after both sends: the order is set. Threads: Qdrant Edge has one owner.
            one = start_trooply(["worker", "--pool", "threads", "--concurrency", "1", "--queues", "ingest"],
                                trooply_env(tmp_path, TROOPLY_REDIS_URL=redis_url), tmp_path / "worker.log")
            try:
                done = wait_for_job(client, small.secret_key, small_job, timeout=120)
                big_counts = client.get(f"/v1/jobs/{big_job}", headers=auth(big.secret_key)).json()["counts"]
                assert done["counts"]["indexed"] == 1
                # FIFO: all 16 of A's first (pending 0). In turn: one of A's, then B's; a loaded box may let a few more
                # of A's finish before this read.
                assert big_counts["pending"] >= 10, big_counts
                finished = wait_for_job(client, big.secret_key, big_job, timeout=180)
                assert finished["counts"] == {"pending": 0, "indexed": 16, "failed": 0}
            finally:
                stop(one)
