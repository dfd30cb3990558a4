"""Several images per product in the merchant portal, in Debian's Chromium against a real `trooply serve`: the
product page lists every image with its status, and a search result shows the image that matched."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import auth
from tests.integration.test_portal_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _wait_for_job
from tests.support.image_server import ImageServer
from tests.support.images import product_png
from tests.support.services import create_tenant_cli, serving, trooply_env

VIEWS = {"/front.png": product_png("sneaker", (205, 38, 38)), "/back.png": product_png("lamp", (40, 140, 70)),
         "/mug.png": product_png("mug", (20, 130, 130))}


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Page, str, str, ImageServer]]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: tests/run.sh installs Debian's chromium package")
    workdir = tmp_path_factory.mktemp("portal-images")
    with ImageServer() as images:
        for path, data in VIEWS.items():
            images.add_image(path, data)
        env = trooply_env(workdir / "data")
        with serving(env, workdir / "serve.log") as url:
            tenant = create_tenant_cli(env)
            with httpx.Client(base_url=url, headers=auth(tenant["secret_key"]), timeout=30) as api:
                job = api.post("/v1/products", json={"products": [
                    {"id": "runner", "title": "Runner",
                     "images": [images.url(p) for p in ("/front.png", "/gone.png", "/back.png")]},  # free: 3 at most
                    {"id": "mug", "title": "Mug", "image_url": images.url("/mug.png")}]}).json()
                _wait_for_job(api, job["job_id"])
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 960})
                page.set_default_timeout(TIMEOUT_MS)
                problems: list[str] = []
                page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
                page.goto(f"{url}/portal")
                page.get_by_test_id("api-key-input").fill(tenant["secret_key"])
                page.get_by_test_id("sign-in").click()
                expect(page.get_by_test_id("catalog-counts")).to_be_visible()
                yield page, url, tenant["secret_key"], images
                browser.close()
                assert not problems, problems


def test_the_product_page_lists_every_image_with_its_status(portal: tuple[Page, str, str, ImageServer]) -> None:
    page, _url, _key, images = portal
    page.evaluate("window.location.hash = '#/products/runner'")
    expect(page.get_by_test_id("product-title")).to_have_text("Runner")
    listed = page.get_by_test_id("product-image")
    expect(listed).to_have_count(3)
    statuses = [listed.nth(i).get_attribute("data-status") for i in range(3)]
    assert statuses == ["indexed", "failed", "indexed"]
    expect(listed.nth(1).get_by_test_id("product-image-status")).to_have_text("failed: image_not_found")
    expect(listed.nth(2)).to_contain_text(images.url("/back.png"))


def test_a_search_result_shows_the_image_that_matched(portal: tuple[Page, str, str, ImageServer]) -> None:
    page, _url, _key, images = portal
    page.evaluate("window.location.hash = '#/search'")
    page.get_by_test_id("mode-url").check()
    page.get_by_test_id("search-url-input").fill(images.url("/back.png"))
    with page.expect_response(lambda r: r.url.endswith("/v1/search/url")) as answer:
        page.get_by_test_id("search-submit").click()
    first = answer.value.json()["results"][0]
    assert first["id"] == "runner" and first["matched_image"] == {"url": images.url("/back.png"), "position": 2}
    card = page.locator("[data-testid=result-card][data-product-id=runner]")
    expect(card.locator("img")).to_have_attribute("src", images.url("/back.png"))
    expect(card.get_by_test_id("result-matched-image")).to_have_text("matched image #3")
