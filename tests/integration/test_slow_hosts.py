"""A host that sends an image one byte at a time must not starve other shoppers: URL fetches wait on their
own pool, not on the threads that serve requests, and one tenant can only have so many in flight."""

import threading
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from tests.conftest import auth, make_settings, new_tenant
from tests.support.slow_server import DribbleServer
from trooply.api.app import create_app

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 4096\r\n\r\n"
SLOW_SEARCHES = 45  # more than the 40 threads that serve sync routes


def test_slow_image_hosts_do_not_hold_up_a_text_search(tmp_path):
    settings = make_settings(tmp_path, fetch_deadline=4.0, fetch_read_timeout=4.0, query_fetch_concurrency=64,
                             query_fetch_per_tenant=64)
    with TestClient(create_app(settings)) as client, DribbleServer(HEAD, b"\x89PNG" * 1024, 1.0) as host:
        keys = new_tenant(client)
        pk = auth(keys.publishable_key)
        finished = threading.Event()

        def slow_search(_: int) -> int:
            response = client.post("/v1/search/url", json={"image_url": host.url("/p.png")}, headers=pk)
            finished.set()
            return response.json()["error"]["code"]

        with ThreadPoolExecutor(SLOW_SEARCHES) as pool:
            slow = list(map(lambda i: pool.submit(slow_search, i), range(SLOW_SEARCHES)))
            while host.connections < SLOW_SEARCHES:  # every slow fetch is in flight
                threading.Event().wait(0.02)
            text = client.post("/v1/search/text", json={"query": "red bag"}, headers=pk)
            # Answered while every slow search was still waiting on its host.
            assert text.status_code == 200 and not finished.is_set()
            codes = [future.result() for future in slow]
        assert codes == ["fetch_timeout"] * SLOW_SEARCHES


def test_one_tenant_cannot_hold_every_fetch(tmp_path):
    settings = make_settings(tmp_path, fetch_deadline=2.0, fetch_read_timeout=2.0, query_fetch_per_tenant=2)
    with TestClient(create_app(settings)) as client, DribbleServer(HEAD, b"\x89PNG" * 1024, 0.5) as host:
        greedy, other = new_tenant(client, "greedy"), new_tenant(client, "other")

        def search(key: str):
            return client.post("/v1/search/url", json={"image_url": host.url("/p.png")}, headers=auth(key))

        with ThreadPoolExecutor(4) as pool:
            greedy_calls = [pool.submit(search, greedy.publishable_key) for _ in range(2)]
            while host.connections < 2:
                threading.Event().wait(0.02)
            refused = search(greedy.publishable_key)
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_fetches"
            assert int(refused.headers["retry-after"]) >= 1
            # Another tenant still reaches the host (and times out on it like anyone would).
            assert search(other.publishable_key).json()["error"]["code"] == "fetch_timeout"
            assert all(call.result().json()["error"]["code"] == "fetch_timeout" for call in greedy_calls)
