"""QueryImageFetcher: its own threads, a per-tenant cap on fetches in flight, and shutdown."""

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from trooply.config import Settings
from trooply.errors import ImageError, TrooplyError
from trooply.vision.fetch import FetchedImage
from trooply.vision.query_fetch import THREAD_PREFIX, QueryImageFetcher

PNG = solid_png(8, 8)


class GatedFetcher:
    """Stands in for ImageFetcher: each fetch waits for the gate and records the thread it ran on."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.threads: list[str] = []
        self.started = threading.Semaphore(0)
        self.closed = False

    def fetch(self, url: str) -> FetchedImage:
        self.threads.append(threading.current_thread().name)
        self.started.release()
        assert self.gate.wait(5), "the test never opened the gate"
        return FetchedImage(url.encode(), url, "image/png")

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def gated() -> Iterator[GatedFetcher]:
    fetcher = GatedFetcher()
    yield fetcher
    fetcher.gate.set()


def make(fetcher: Any, concurrency: int = 8, per_tenant: int = 2) -> QueryImageFetcher:
    return QueryImageFetcher(fetcher, concurrency=concurrency, per_tenant=per_tenant)


def test_tenant_over_its_cap_is_refused_while_another_gets_through(gated: GatedFetcher) -> None:
    queries = make(gated, per_tenant=2)

    async def scenario() -> tuple[TrooplyError, list[bytes]]:
        held = [asyncio.ensure_future(queries.fetch("t1", f"u{i}")) for i in range(2)]
        await asyncio.sleep(0)  # let both submit
        with pytest.raises(TrooplyError) as refused:
            await queries.fetch("t1", "u2")
        other = asyncio.ensure_future(queries.fetch("t2", "v"))
        # All three are running at once: t1 at its cap, t2 beside it.
        await asyncio.to_thread(lambda: [gated.started.acquire(timeout=5) for _ in range(3)])
        gated.gate.set()
        return refused.value, await asyncio.gather(*held, other)

    refused, results = asyncio.run(scenario())
    assert (refused.code, refused.status, refused.details, refused.transient) == (
        "too_many_fetches", 429, {"retry_after": 1}, True)
    assert results == [b"u0", b"u1", b"v"]
    queries.close()


def test_slots_come_back_when_fetches_end(gated: GatedFetcher) -> None:
    gated.gate.set()
    queries = make(gated, per_tenant=1)
    assert [queries.fetch_sync("t1", f"u{i}") for i in range(3)] == [b"u0", b"u1", b"u2"]
    queries.close()


def test_failed_fetch_gives_its_slot_back() -> None:
    class Failing:
        def fetch(self, url: str) -> FetchedImage:
            raise ImageError("nope", code="image_not_found")

        def close(self) -> None:
            pass

    queries = make(Failing(), per_tenant=1)
    for _ in range(2):
        with pytest.raises(ImageError) as caught:
            queries.fetch_sync("t1", "u")
        assert caught.value.code == "image_not_found"
    queries.close()


def test_abandoned_fetch_keeps_its_slot_until_it_ends(gated: GatedFetcher) -> None:
    # A shopper who hangs up must not free a slot while the host is still dribbling to our thread.
    queries = make(gated, per_tenant=1)

    async def abandon() -> None:
        task = asyncio.ensure_future(queries.fetch("t1", "u"))
        await asyncio.to_thread(gated.started.acquire, timeout=5)
        task.cancel()

    asyncio.run(abandon())
    with pytest.raises(TrooplyError) as refused:
        queries.fetch_sync("t1", "u")
    assert refused.value.code == "too_many_fetches"
    gated.gate.set()
    queries.close()  # waits for the running fetch
    assert gated.threads == [f"{THREAD_PREFIX}_0"]


def test_fetches_run_on_the_dedicated_pool(gated: GatedFetcher) -> None:
    gated.gate.set()
    queries = make(gated)
    asyncio.run(queries.fetch("t1", "u"))
    queries.fetch_sync("t1", "u")
    assert len(gated.threads) == 2 and all(name.startswith(THREAD_PREFIX) for name in gated.threads)
    queries.close()


def test_close_shuts_the_pool_and_the_fetcher(gated: GatedFetcher) -> None:
    gated.gate.set()
    queries = make(gated)
    queries.close()
    assert gated.closed
    with pytest.raises(TrooplyError) as caught:
        queries.fetch_sync("t1", "u")
    assert (caught.value.code, caught.value.status) == ("shutting_down", 503)


def test_settings_default_to_32_threads_and_8_per_tenant() -> None:
    assert (Settings().fetch.query_concurrency, Settings().fetch.query_per_tenant) == (32, 8)


def test_from_settings_fetches_under_the_address_rule() -> None:
    kept = QueryImageFetcher.from_settings(Settings(fetch_allowed_networks=[]))
    loopback = QueryImageFetcher.from_settings(Settings(fetch_allowed_networks=["127.0.0.1/32"],
                                                        query_fetch_per_tenant=1))
    with ImageServer() as server:
        server.add_image("/a.png", PNG)
        with pytest.raises(ImageError) as caught:
            asyncio.run(kept.fetch("t1", server.url("/a.png")))
        assert (caught.value.code, server.hits("/a.png")) == ("blocked_address", 0)
        assert asyncio.run(loopback.fetch("t1", server.url("/a.png"))) == PNG
    for queries in (kept, loopback):
        queries.close()
