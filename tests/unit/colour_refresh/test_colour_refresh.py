"""The colour refresh on real parts: SQLite (and PostgreSQL), qdrant-client on disk, a real image server on
127.0.0.1."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from tests.conftest import make_settings
from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from tests.support.postgres import postgres_server
from trooply.catalog.models import INDEXED, ProductRecord
from trooply.colour_refresh.service import ColourRefreshService
from trooply.colour_refresh.task import ColourRefresher
from trooply.db import Database
from trooply.index.base import IndexPoint
from trooply.index.server import QdrantServerIndex
from trooply.spaces.live import LiveSpaces
from trooply.tenancy.service import TenantService
from trooply.vectors import VectorSpace
from trooply.vision.colour import palette_names, stored_palette
from trooply.vision.fetch import FetchedImage, ImageFetcher

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")
OLD_HISTOGRAM = [1.0] + [0.0] * 63


class Killed(BaseException):
    """The process dying mid-page."""


class CountingFetcher:
    """Ingest's fetcher, counting fetches per URL, and dying at the `kill_at`-th fetch when asked."""

    def __init__(self, fetcher: ImageFetcher, kill_at: int | None = None) -> None:
        self.fetcher, self.kill_at, self.fetched = fetcher, kill_at, []

    def fetch(self, url: str) -> FetchedImage:
        self.fetched.append(url)
        if self.kill_at is not None and len(self.fetched) == self.kill_at:
            raise Killed()
        return self.fetcher.fetch(url)


@dataclass
class Shop:
    db: Database
    index: QdrantServerIndex
    images: ImageServer
    fetcher: ImageFetcher
    service: ColourRefreshService
    tenant_id: str
    settings: object

    def add_products(self, colours: dict[str, tuple[int, int, int]], palette: bool = False) -> None:
        """Indexed products as the old ingest left them: a histogram, no palette (or a palette already)."""
        for pid, rgb in colours.items():
            self.images.add_image(f"/{pid}.png", solid_png(40, 40, rgb))
        with self.db.session() as session:
            session.add_all(ProductRecord(tenant_id=self.tenant_id, id=pid, image_url=self.images.url(f"/{pid}.png"),
                                          meta={"title": pid}, status=INDEXED) for pid in colours)
        image = {"colour_palette": [[50.0, 0.0, 0.0, 1.0]]} if palette else {"colour_hist": OLD_HISTOGRAM}
        self.index.upsert(self.tenant_id, [IndexPoint(pid, np.ones(4, dtype=np.float32), {
            "title": pid, "image": {**image, "aspect_ratio": 1.0}}) for pid in colours])

    def refresher(self, fetcher: object, page_size: int = 2) -> ColourRefresher:
        return ColourRefresher(self.db, LiveSpaces.serving(self.index), fetcher, self.settings,  # type: ignore[arg-type]
                               page_size=page_size)

    def names(self) -> dict[str, str | None]:
        points = self.index.retrieve(self.tenant_id, [f"p{i}" for i in range(10)])
        return {p.product_id: (palette_names(palette)[0]["name"] if (palette := stored_palette(p.payload["image"]))
                               else None) for p in points}


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite"])
def shop(request, tmp_path: Path) -> Iterator[Shop]:
    database = {} if request.param == "sqlite" else {"database_url": request.getfixturevalue("postgres_url")}
    settings = make_settings(tmp_path, ingest_max_attempts=1, **database)
    db = Database(settings.sql_url)
    db.migrate()
    tenant_id = TenantService(db).create_tenant("shop", "free").tenant_id
    index = QdrantServerIndex(QdrantClient(path=str(tmp_path / "qdrant")), VectorSpace("test", 4))
    fetcher = ImageFetcher.from_settings(settings)
    with ImageServer() as images:
        try:
            yield Shop(db, index, images, fetcher, ColourRefreshService(db, None), tenant_id, settings)
        finally:
            fetcher.close()
            index.close()
            db.close()


COLOURS = {"p0": (0, 0, 255), "p1": (200, 30, 35), "p2": (20, 30, 80), "p3": (40, 150, 60), "p4": (250, 250, 250)}


def test_refresh_recomputes_old_colours_without_encoding_and_reports_progress(shop):
    shop.add_products(COLOURS)
    started = shop.service.start()
    assert started.started == [shop.tenant_id] and (started.total, started.done) == (5, 0)
    assert started.tenants[0].status == "pending"
    fetcher = CountingFetcher(shop.fetcher)
    assert shop.refresher(fetcher).run(shop.tenant_id)
    assert shop.names() == {"p0": "blue", "p1": "red", "p2": "navy", "p3": "green", "p4": "white"}
    point = shop.index.retrieve(shop.tenant_id, ["p0"])[0]
    assert "colour_hist" not in point.payload["image"] and point.payload["image"]["aspect_ratio"] == 1.0
    assert point.payload["title"] == "p0" and np.allclose(point.vector, 0.5)  # the vector is untouched
    status = shop.service.status()
    assert (status.done, status.failed, status.total) == (5, 0, 5) and status.tenants[0].status == "done"
    assert shop.service.start().started == []  # current: a second `trooply migrate` begins nothing


@pytest.mark.parametrize("shop", ["sqlite", "postgresql"], indirect=True)
def test_refresh_resumes_after_a_kill_at_the_first_page_not_recorded(shop):
    shop.add_products(COLOURS)
    shop.service.start()
    dying = CountingFetcher(shop.fetcher, kill_at=4)  # pages of two: dies on the second page's second image
    with pytest.raises(Killed):
        shop.refresher(dying).run(shop.tenant_id)
    assert shop.service.status().tenants[0].done == 2  # the first page only
    again = CountingFetcher(shop.fetcher)
    assert shop.refresher(again).run(shop.tenant_id)
    assert sorted(again.fetched) == sorted(shop.images.url(f"/p{i}.png") for i in (2, 3, 4))
    assert all(name is not None for name in shop.names().values())
    assert shop.service.status().done == 5


def test_current_products_are_skipped_and_failed_images_keep_a_neutral_colour_until_a_restart(shop):
    shop.add_products({"p0": (0, 0, 255)}, palette=True)
    shop.add_products({"p1": (200, 30, 35), "p2": (20, 30, 80)})
    shop.images.add_status("/p2.png", 404)
    shop.service.start()
    fetcher = CountingFetcher(shop.fetcher)
    assert shop.refresher(fetcher).run(shop.tenant_id)
    assert fetcher.fetched == [shop.images.url("/p1.png"), shop.images.url("/p2.png")]  # p0 was current
    assert shop.names() == {"p0": "grey", "p1": "red", "p2": None}
    status = shop.service.status()
    assert (status.done, status.failed, status.total) == (2, 1, 3)
    # Which product failed, and why, is recorded per product.
    assert [(f.product_id, f.code, f.attempts) for f in status.tenants[0].failures] == [
        ("p2", "image_not_found", 1)]
    assert shop.service.start(restart=True).started == [shop.tenant_id]  # still gone: one more attempt
    assert shop.refresher(CountingFetcher(shop.fetcher)).run(shop.tenant_id)
    assert [(f.product_id, f.attempts) for f in shop.service.status().tenants[0].failures] == [("p2", 2)]
    shop.images.add_image("/p2.png", solid_png(40, 40, (20, 30, 80)))  # the image is back
    assert shop.service.start(restart=True).started == [shop.tenant_id]
    assert shop.refresher(CountingFetcher(shop.fetcher)).run(shop.tenant_id)
    status = shop.service.status()
    assert shop.names()["p2"] == "navy" and status.failed == 0 and status.tenants[0].failures == []
