"""SearchService on its own (real SQLite, the real index, the tiny model; no HTTP): who sees what, and what the
envelope says. Random weights: the tests check behaviour, never which product is the better match."""

import pytest

from tests.conftest import make_settings
from tests.support.image_server import ImageServer
from tests.support.images import product_png
from trooply.catalog.schemas import ProductIn
from trooply.container import Container
from trooply.errors import NotFound
from trooply.search.schemas import SearchOptions


@pytest.fixture(scope="module")
def shops(tmp_path_factory):
    container = Container(make_settings(tmp_path_factory.mktemp("search")))
    container.prepare()
    acme = container.tenants.create_tenant("acme", "free").tenant_id
    other = container.tenants.create_tenant("other", "free").tenant_id
    with ImageServer() as images:
        colours = {"red": (200, 30, 30), "blue": (30, 30, 200), "green": (30, 200, 30)}
        for name, rgb in colours.items():
            images.add_image(f"/{name}.png", product_png("circle", rgb))
        for tenant, names in ((acme, ["red", "blue", "green"]), (other, ["red"])):
            products = [ProductIn(id=f"{name}-shirt", image_url=images.url(f"/{name}.png"), brand=name,
                                  category="shirts", in_stock=name != "green") for name in names]
            submission = container.catalog.submit(tenant, products)
            container.run_ingest(tenant, submission.job_id, [p.id for p in products])
    yield container, acme, other
    container.stop()


def test_a_text_search_answers_from_the_tenants_own_catalogue_with_scores_in_order(shops):
    container, acme, other = shops
    found = container.search.search_text(acme, "a shirt", SearchOptions(limit=10))
    ids = [hit.id for hit in found.results]
    assert sorted(ids) == ["blue-shirt", "green-shirt", "red-shirt"]
    scores = [hit.similarity_score for hit in found.results]
    assert scores == sorted(scores, reverse=True)
    assert found.mode == "text" and found.search_id
    assert [hit.id for hit in container.search.search_text(other, "a shirt", SearchOptions()).results] == [
        "red-shirt"]


def test_filters_and_the_limit_apply_before_the_page_is_cut(shops):
    container, acme, _other = shops
    in_stock = container.search.search_text(acme, "a shirt", SearchOptions(filters={"in_stock": True}))
    assert sorted(hit.id for hit in in_stock.results) == ["blue-shirt", "red-shirt"]
    assert len(container.search.search_text(acme, "a shirt", SearchOptions(limit=1)).results) == 1


def test_similar_products_leave_the_product_itself_out_and_an_unknown_one_is_not_found(shops):
    container, acme, _other = shops
    similar = container.search.search_similar(acme, "red-shirt", SearchOptions(limit=10))
    assert sorted(hit.id for hit in similar.results) == ["blue-shirt", "green-shirt"]
    with pytest.raises(NotFound):
        container.search.search_similar(acme, "no-such-product", SearchOptions())
