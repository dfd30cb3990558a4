"""The storefront widget in a real browser: Debian's Chromium driven by Playwright on a demo shop page served from
another 127.0.0.1 port than the API (a real `trooply serve`), so CORS is exercised as on a merchant's site. The
widget loads, a picture (uploaded and from the fake camera) returns results, a crop and a refinement search
again, "More like this" runs a similar search, and a click sends an event that analytics then counts. The same
page on an origin the tenant does not list shows the widget's clear error. Screenshots land in
test-artifacts/widget/ (TROOPLY_TEST_ARTIFACTS moves them)."""

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import auth
from tests.support.image_server import ImageServer
from tests.support.images import product_png
from tests.support.services import create_tenant_cli, serving, trooply_env

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TROOPLY_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "widget"
CHROMIUM = os.environ.get("TROOPLY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run",
                 # A camera without a prompt: Chromium's fake capture device (a moving test pattern).
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
TIMEOUT_MS = 30_000

CATALOGUE = [("sku-red-runner", "Red runner", "sneaker", (205, 38, 38), 89.0),
             ("sku-navy-runner", "Navy runner", "sneaker", (28, 40, 110), 95.0),
             ("sku-tan-tote", "Tan tote", "bag", (200, 150, 95), 45.0),
             ("sku-blue-tee", "Blue tee", "shirt", (40, 90, 200), 19.0),
             ("sku-brass-lamp", "Brass desk lamp", "lamp", (200, 165, 60), 140.0),
             ("sku-teal-mug", "Teal mug", "mug", (20, 130, 130), 12.0)]

DEMO_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo shop</title>
<style>
  :root {{ --trooply-accent: #0a7d55; --trooply-radius: 10px; }}
  body {{ font-family: Georgia, serif; margin: 0; }}
  header {{ display: flex; align-items: center; gap: 24px; padding: 16px 32px; background: #f4efe6; }}
  input[type=search] {{ width: 320px; padding: 8px 12px; font-size: 16px; }}
</style></head>
<body>
  <header><strong>Demo shop</strong>
    <form role="search" onsubmit="return false"><input id="search" type="search" aria-label="Search the shop"
      placeholder="Search the shop"></form></header>
  <main><h1>New arrivals</h1><p>Find anything with a picture: press the camera in the search box.</p></main>
  <script src="{api}/widget.js" data-key="{key}" data-input="#search" async></script>
</body></html>
"""


@dataclass
class Storefront:
    api_url: str
    secret_key: str
    publishable_key: str
    shop_url: str  # the tenant's own site: an allowed origin
    stranger_url: str  # another site with the same page and key: not allowed
    api: httpx.Client


def _wait_for_job(api: httpx.Client, job_id: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.get(f"/v1/jobs/{job_id}").json()["status"] == "completed":
            return
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not complete")


@pytest.fixture(scope="module")
def storefront(tmp_path_factory) -> Iterator[Storefront]:
    workdir = tmp_path_factory.mktemp("widget")
    with ImageServer() as shop_site, ImageServer() as stranger_site:
        products = []
        for pid, title, shape, rgb, price in CATALOGUE:
            shop_site.add_image(f"/img/{pid}.png", product_png(shape, rgb))
            products.append({"id": pid, "image_url": shop_site.url(f"/img/{pid}.png"), "title": title,
                             "category": "misc", "price": price, "currency": "EUR",
                             "attributes": {"url": f"#/products/{pid}"}})
        env = trooply_env(workdir / "data")
        try:
            with serving(env, workdir / "serve.log") as api_url:
                tenant = create_tenant_cli(env)
                page = DEMO_PAGE.format(api=api_url, key=tenant["publishable_key"]).encode()
                for site in (shop_site, stranger_site):
                    site.add_image("/", page, content_type="text/html; charset=utf-8")
                shop_url = shop_site.url("").rstrip("/")
                with httpx.Client(base_url=api_url, headers=auth(tenant["secret_key"]), timeout=30) as api:
                    _wait_for_job(api, api.post("/v1/products", json={"products": products}).json()["job_id"])
                    allowed = api.put("/v1/account/allowed-origins", json={"allowed_origins": [shop_url]})
                    assert allowed.status_code == 200, allowed.text
                    yield Storefront(api_url, tenant["secret_key"], tenant["publishable_key"], shop_url,
                                     stranger_site.url("").rstrip("/"), api)
        finally:
            print((workdir / "serve.log").read_text()[-4000:])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: tests/run.sh installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, errors


def shot(page: Page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png")


def _search_answer(page: Page, path: str, action) -> dict:
    with page.expect_response(lambda r: r.url.endswith(path) and r.request.method == "POST") as answer:
        action()
    response = answer.value
    assert response.status == 200, response.text()
    return response.json()


def test_a_shopper_searches_with_a_picture_crops_refines_and_clicks(page: Page, storefront: Storefront,
                                                                      tmp_path) -> None:
    page.goto(f"{storefront.shop_url}/")
    opener = page.get_by_test_id("trooply-open")
    expect(opener).to_be_visible()
    expect(opener).to_have_accessible_name("Search with a picture")
    shot(page, "01-storefront")

    opener.click()
    dialog = page.get_by_role("dialog", name="Search with a picture")
    expect(dialog).to_be_visible()
    shot(page, "02-modal")

    upload = tmp_path / "runner.png"
    upload.write_bytes(product_png("sneaker", (200, 40, 40), size=480))
    envelope = _search_answer(page, "/v1/search/image",
                              lambda: page.get_by_test_id("trooply-file").set_input_files(upload))
    results = page.get_by_test_id("trooply-result")
    expect(results).to_have_count(len(envelope["results"]))
    assert envelope["results"], "the catalogue has products: a picture finds some"
    expect(results.first).to_have_attribute("data-product-id", envelope["results"][0]["id"])
    expect(page.get_by_role("status")).to_contain_text(f"{len(envelope['results'])} results")
    shot(page, "03-results")

    # The crop box starts around the whole picture; shrinking it from a corner searches the area.
    box = page.get_by_test_id("trooply-crop-box").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2)
    cropped = _search_answer(page, "/v1/search/crop", lambda: (
        page.mouse.down(), page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6, steps=5),
        page.mouse.up()))
    assert cropped["mode"] == "crop" and cropped["results"]
    shot(page, "04-crop")

    # The keyboard moves the box too (arrow keys), and searches again when the key is released.
    page.get_by_test_id("trooply-crop-box").focus()
    moved = _search_answer(page, "/v1/search/crop", lambda: page.keyboard.press("ArrowRight"))
    assert moved["mode"] == "crop"

    page.get_by_test_id("trooply-refine").fill("like this, but in blue")
    fused = _search_answer(page, "/v1/search/fusion", lambda: page.get_by_test_id("trooply-search").click())
    assert fused["mode"] == "fusion"
    shot(page, "05-refined")

    similar = _search_answer(page, "/v1/search/similar", lambda: page.get_by_test_id("trooply-more").first.click())
    assert similar["mode"] == "similar" and fused["results"][0]["id"] not in [r["id"] for r in similar["results"]]
    expect(page.get_by_test_id("trooply-result")).to_have_count(len(similar["results"]))

    # A click on a result sends the event by itself, with the search id and the position.
    second = page.get_by_test_id("trooply-result").nth(1)
    clicked_id = second.get_attribute("data-product-id")
    with page.expect_request(lambda r: r.url.endswith("/v1/events") and r.method == "POST") as sent:
        second.click()
    event = json.loads(sent.value.post_data or "{}")["events"][0]
    assert event == {"type": "click", "search_id": similar["search_id"], "product_id": clicked_id, "position": 1,
                     "event_id": f"{similar['search_id']}:{clicked_id}:click"}
    answer = sent.value.response()
    assert answer is not None and answer.status == 200 and answer.json()["accepted"] == 1
    assert answer.headers["access-control-allow-origin"] == storefront.shop_url
    shot(page, "06-clicked")

    overview = storefront.api.get("/v1/analytics/overview").json()
    assert overview["totals"]["clicks"] == 1 and overview["by_mode"]["similar"]["clicks"] == 1
    assert overview["totals"]["average_click_position"] == 2.0
    top = storefront.api.get("/v1/analytics/products?sort=clicks").json()["products"]
    assert top[0]["product_id"] == clicked_id

    # Escape closes the modal, leaves nothing behind, and gives the focus back to the camera button.
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert page.locator("[data-trooply-widget]").count() == 0
    assert page.evaluate("document.activeElement.getAttribute('data-trooply-button')") == "1"


def test_the_camera_takes_a_picture_and_searches_it(page: Page, storefront: Storefront) -> None:
    page.goto(f"{storefront.shop_url}/")
    page.get_by_test_id("trooply-open").click()
    page.get_by_test_id("trooply-camera").click()
    capture = page.get_by_test_id("trooply-capture")
    expect(capture).to_be_focused()
    page.wait_for_function("() => { const host = document.querySelector('[data-trooply-widget]');"
                           " const video = host && host.shadowRoot.querySelector('video');"
                           " return video && video.videoWidth > 0; }")
    shot(page, "07-camera")
    envelope = _search_answer(page, "/v1/search/image", capture.click)
    assert envelope["mode"] == "image"
    expect(page.get_by_test_id("trooply-result")).to_have_count(len(envelope["results"]))
    page.get_by_test_id("trooply-close").click()
    assert page.locator("[data-trooply-widget]").count() == 0


def test_a_site_not_in_the_allowed_origins_gets_a_clear_error(page: Page, storefront: Storefront, tmp_path) -> None:
    page.goto(f"{storefront.stranger_url}/")
    page.get_by_test_id("trooply-open").click()
    upload = tmp_path / "mug.png"
    upload.write_bytes(product_png("mug", (20, 130, 130)))
    page.get_by_test_id("trooply-file").set_input_files(upload)
    error = page.get_by_test_id("trooply-error")
    expect(error).to_contain_text("not enabled on this site")
    expect(error).to_contain_text(storefront.stranger_url)
    expect(page.get_by_test_id("trooply-result")).to_have_count(0)
    shot(page, "08-origin-refused")


def test_the_portal_analytics_page_shows_what_the_api_counts(page: Page, storefront: Storefront) -> None:
    # A text search and a click of its own (from a server: no Origin), beside whatever ran before.
    shopper = {"Authorization": f"Bearer {storefront.publishable_key}"}
    found = httpx.post(f"{storefront.api_url}/v1/search/text", json={"query": "Teal  MUG"}, headers=shopper).json()
    event = {"type": "click", "search_id": found["search_id"], "product_id": found["results"][0]["id"], "position": 0}
    assert httpx.post(f"{storefront.api_url}/v1/events", json={"events": [event]}, headers=shopper).status_code == 200
    page.goto(f"{storefront.api_url}/portal")
    page.get_by_test_id("api-key-input").fill(storefront.secret_key)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("catalog-counts")).to_be_visible()
    page.get_by_role("link", name="Analytics").click()
    totals = page.get_by_test_id("analytics-totals")
    expect(totals).to_be_visible()
    overview = storefront.api.get("/v1/analytics/overview").json()["totals"]
    expect(page.get_by_test_id("kpi-searches")).to_have_text(f"{overview['searches']:,}")
    expect(page.get_by_test_id("kpi-position")).to_have_text(f"{overview['average_click_position']:.1f}")
    # Each chart has its numbers behind it, as a table a screen reader reads.
    for chart in ("chart-searches", "chart-zero", "chart-modes"):
        figure = page.get_by_test_id(chart)
        expect(figure.locator("svg[aria-hidden='true']")).to_have_count(1)
        figure.get_by_text("Show the numbers").click()
        expect(page.get_by_test_id(f"{chart}-table")).to_be_visible()
    modes = page.get_by_test_id("chart-modes-table")
    expect(modes.get_by_role("row", name="text")).to_be_visible()
    expect(page.get_by_test_id("queries-count")).to_contain_text("teal mug")  # normalised
    clicked = storefront.api.get("/v1/analytics/products?sort=clicks").json()["products"][0]["product_id"]
    expect(page.get_by_test_id("top-products")).to_contain_text(clicked)
    page.screenshot(path=ARTIFACTS / "09-portal-analytics.png", full_page=True)

    # The API keys page edits the storefront origins.
    page.get_by_role("link", name="API keys").click()
    origins = page.get_by_test_id("allowed-origins")
    expect(origins).to_have_value(storefront.shop_url)
    origins.fill(f"{storefront.shop_url}\nhttps://*.shop.example")
    page.get_by_test_id("save-origins").click()
    expect(page.get_by_test_id("allowed-origins-error")).to_contain_text("invalid_origin")
    origins.fill(f"{storefront.shop_url}\nhttps://M.Shop.Example/")
    page.get_by_test_id("save-origins").click()
    expect(origins).to_have_value(f"{storefront.shop_url}\nhttps://m.shop.example")
    page.screenshot(path=ARTIFACTS / "10-portal-origins.png", full_page=True)
    assert storefront.api.get("/v1/account").json()["allowed_origins"] == [storefront.shop_url, "https://m.shop.example"]
    storefront.api.put("/v1/account/allowed-origins", json={"allowed_origins": [storefront.shop_url]})


def _drop_or_paste(page: Page, event: str, png: bytes) -> None:
    """A real File in a DataTransfer, dropped on the drop zone or pasted into the page, as a browser delivers it."""
    page.evaluate("""([kind, b64]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "picture.png", { type: "image/png" }));
        const root = document.querySelector("[data-trooply-widget]").shadowRoot;
        if (kind === "drop") {
            root.querySelector("[data-testid=trooply-dropzone]").dispatchEvent(
                new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true, composed: true }));
        } else {
            document.dispatchEvent(
                new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true }));
        }
    }""", [event, base64.b64encode(png).decode()])


def test_drop_paste_other_languages_and_a_button_of_the_shops_own(page: Page, storefront: Storefront) -> None:
    # Strings replaced before the script runs, and the modal opened from code (the shop's own button).
    page.add_init_script("window.TrooplyStrings = {button: 'Mit einem Bild suchen', title: 'Suche mit einem Bild',"
                         " results: '{count} Treffer'}")
    page.goto(f"{storefront.shop_url}/")
    expect(page.get_by_test_id("trooply-open")).to_have_accessible_name("Mit einem Bild suchen")
    page.evaluate("window.Trooply.open()")
    expect(page.get_by_role("dialog", name="Suche mit einem Bild")).to_be_visible()
    dropped = _search_answer(page, "/v1/search/image",
                             lambda: _drop_or_paste(page, "drop", product_png("bag", (200, 150, 95))))
    expect(page.get_by_role("status")).to_have_text(f"{len(dropped['results'])} Treffer")
    pasted = _search_answer(page, "/v1/search/image",
                            lambda: _drop_or_paste(page, "paste", product_png("lamp", (200, 165, 60))))
    expect(page.get_by_test_id("trooply-result")).to_have_count(len(pasted["results"]))
    assert pasted["search_id"] != dropped["search_id"]
    shot(page, "11-strings-drop-paste")
    page.keyboard.press("Escape")
    assert page.locator("[data-trooply-widget]").count() == 0
