"""Several images per product, on both engines: every image searchable, a product scored by its closest image and
found once, the image that matched named, and the images carried by every read and move of a point."""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.index_engines import SPACE, Engine
from trooply.index.base import HybridQuery, IndexPoint
from trooply.index.filters import filterable_payload, parse_filters
from trooply.index.tiers import TENANT_KEY, TieredIndex
from trooply.index.words import lexicon

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


def direction(*weights: float) -> np.ndarray:
    vector = np.zeros(SPACE.size, dtype=np.float32)
    vector[:len(weights)] = weights
    return vector / np.linalg.norm(vector)


def product(product_id: str, *images: np.ndarray, **metadata: Any) -> IndexPoint:
    return IndexPoint(product_id, images[0], {"product_id": product_id, **filterable_payload(metadata)},
                      np.stack(images) if len(images) > 1 else None)


# A front view, a side view, a back view: the shoe's side view is what a shopper photographs.
SHOE = product("shoe", direction(1), direction(0, 0, 1), direction(0, 0, 0, 1), category="shoes")
BOOT = product("boot", direction(1, 0.2), direction(0, 1), category="shoes")
BAG = product("bag", direction(0, 0, 0, 0, 1), category="bags")




@pytest.fixture(params=["edge", "server"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    opened = Engine(request.param, tmp_path, server_settle_seconds=0)
    yield opened
    opened.close()


@pytest.fixture
def index(engine: Engine) -> TieredIndex:
    index = engine.open()
    index.upsert("a", [SHOE, BOOT, BAG])
    return index


def ranked(hits: list[Any]) -> list[tuple[str, int, float]]:
    return [(hit.product_id, hit.image_position, round(hit.score, 4)) for hit in hits]


def test_a_product_is_scored_by_its_closest_image_and_found_once(index: TieredIndex) -> None:
    side_view = direction(0.1, 0, 1)
    hits = index.query("a", side_view, 10)
    assert [hit.product_id for hit in hits] == ["shoe", "boot", "bag"]  # each once, though the shoe has 3 images
    assert hits[0].image_position == 1 and hits[0].score == pytest.approx(float(side_view @ direction(0, 0, 1)))
    assert hits[1].image_position == 0  # the boot's front view is its closest to this photo
    back_view = index.query("a", direction(0, 0, 0, 1), 1)
    assert ranked(back_view) == [("shoe", 2, 1.0)]


def test_the_main_image_still_wins_when_it_is_the_closest(index: TieredIndex) -> None:
    (hit, *_) = index.query("a", direction(1), 10)
    assert (hit.product_id, hit.image_position, hit.score) == ("shoe", 0, pytest.approx(1.0))


def test_every_leg_of_a_hybrid_query_names_the_closest_image(index: TieredIndex) -> None:
    query = HybridQuery(direction(0, 1), 10, conditions=parse_filters({"category": "shoes"}), with_vectors=True)
    hits = index.hybrid_query("a", query).pictures
    assert ranked(hits)[0] == ("boot", 1, 1.0)
    assert [hit.product_id for hit in hits] == ["boot", "shoe"]  # the filter holds on the images leg too
    assert hits[0].vector == pytest.approx(BOOT.vector)  # the product's main vector, as before


@pytest.mark.parametrize(("with_vectors", "length"), [(False, 1.0), (True, 1.0), (False, 3.0)])
def test_a_product_found_by_its_words_alone_is_scored_by_its_closest_image(engine: Engine, with_vectors: bool,
                                                                            length: float) -> None:
    # The pictures legs (one hit each) find the boot alone; the words alone find the runner and the tote, each
    # scored by its closest image all the same: the runner by its second image, the tote by its only one. Scored
    # by the cosine, as the engine scores the pictures legs, whatever the query vector's length.
    def titled(point: IndexPoint, title: str) -> IndexPoint:
        return replace(point, payload={**point.payload, "metadata": {"title": title}})
    index = engine.open()
    index.upsert("a", [titled(product("runner", direction(1), direction(0, 0.6, 0.8)), "trail runner"),
                       titled(product("tote", direction(0, 0, 0, 1)), "trail tote"),
                       titled(product("boot", direction(0, 0.8, 0.2), direction(0, 1, 0.2)), "boot"),
                       titled(product("bag", direction(0, 1)), "bag")])
    query = HybridQuery(length * direction(0, 1, 0.3), 1, lexicon().query("trail").vector,
                        with_vectors=with_vectors, words_limit=10)
    found = index.hybrid_query("a", query)
    assert [hit.product_id for hit in found.pictures] == ["boot"]
    by_words = {hit.product_id: hit for hit in found.words}
    assert set(by_words) == {"runner", "tote"}
    runner, tote = by_words["runner"], by_words["tote"]
    cosine = float(direction(0, 1, 0.3) @ direction(0, 0.6, 0.8))
    assert (runner.image_position, runner.score) == (1, pytest.approx(cosine))
    assert (tote.image_position, tote.score) == (0, pytest.approx(0.0, abs=1e-6))
    assert (runner.vector is not None) == with_vectors


def test_the_images_come_back_with_the_point_and_a_new_list_replaces_them(index: TieredIndex) -> None:
    (stored,) = index.retrieve("a", ["shoe"])
    assert stored.images is not None and stored.images.shape == (3, SPACE.size)
    assert stored.images[1] == pytest.approx(direction(0, 0, 1))
    index.upsert("a", [product("shoe", direction(1))])  # down to its main image
    assert index.retrieve("a", ["shoe"])[0].images is None
    shoe = next(hit for hit in index.query("a", direction(0, 0, 0, 1), 10) if hit.product_id == "shoe")
    assert (shoe.score, shoe.image_position) == (pytest.approx(0.0, abs=1e-5), 0)  # its back view is gone


def test_a_promoted_tenant_keeps_every_image(index: TieredIndex) -> None:
    index.promote("a").result(timeout=60)
    assert index.tier("a").tier == "dedicated"
    assert ranked(index.query("a", direction(0, 0, 0, 1), 1)) == [("shoe", 2, 1.0)]
    assert index.retrieve("a", ["shoe"])[0].images is not None


def test_deleting_a_product_removes_every_image(index: TieredIndex) -> None:
    index.delete("a", ["shoe"])
    assert "shoe" not in [hit.product_id for hit in index.query("a", direction(0, 0, 0, 1), 10)]
    index.drop_tenant("a")
    assert index.count("a") == 0


def test_a_store_built_before_several_images_serves_its_products_and_takes_new_ones(engine: Engine) -> None:
    payload = {"product_id": "old", TENANT_KEY: "a"}
    engine.write_old_shared_store("a", {"old": (direction(0, 1).tolist(), payload)})
    index = engine.open()
    index.upsert("a", [SHOE])
    assert ranked(index.query("a", direction(0, 1), 1)) == [("old", 0, 1.0)]  # no re-encode needed
    assert ranked(index.query("a", direction(0, 0, 0, 1), 1)) == [("shoe", 2, 1.0)]
