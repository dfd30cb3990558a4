"""The merchant portal in a real browser: Debian's Chromium driven by Playwright against a real `trooply serve`
whose products come from an image server on 127.0.0.1. Each step checks what the page shows against what the
API answers, and saves a screenshot under test-artifacts/portal/ (TROOPLY_TEST_ARTIFACTS moves it)."""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import auth
from tests.support.feed_server import FeedServer
from tests.support.image_server import ImageServer
from tests.support.images import product_png
from tests.support.services import create_tenant_cli, serving, trooply_env
from tests.support.speech import spoken_wav

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TROOPLY_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "portal"
CHROMIUM = os.environ.get("TROOPLY_CHROMIUM", "/usr/bin/chromium")
# Headless Chromium as Debian ships it: no sandbox (containers), and nothing that reaches the network by itself.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 30_000
SPOKEN_QUERY = "running shoes"

# id, title, shape, colour, category, price, in stock
CATALOGUE = [
    ("sku-red-runner", "Red runner", "sneaker", (205, 38, 38), "shoes", 89.0, True),
    ("sku-navy-runner", "Navy runner", "sneaker", (28, 40, 110), "shoes", 95.0, True),
    ("sku-white-court", "White court shoe", "sneaker", (235, 235, 230), "shoes", 70.0, False),
    ("sku-green-trail", "Green trail shoe", "sneaker", (40, 140, 70), "shoes", 120.0, True),
    ("sku-tan-tote", "Tan tote", "bag", (200, 150, 95), "bags", 45.0, True),
    ("sku-black-tote", "Black tote", "bag", (25, 25, 28), "bags", 55.0, True),
    ("sku-pink-tote", "Pink shopper", "bag", (235, 130, 170), "bags", 39.0, True),
    ("sku-blue-tee", "Blue tee", "shirt", (40, 90, 200), "t-shirts", 19.0, True),
    ("sku-yellow-tee", "Yellow tee", "shirt", (240, 205, 50), "t-shirts", 19.0, True),
    ("sku-brass-lamp", "Brass desk lamp", "lamp", (200, 165, 60), "lamps", 140.0, True),
    ("sku-teal-mug", "Teal mug", "mug", (20, 130, 130), "kitchen", 12.0, True),
]


@dataclass
class Shop:
    url: str
    secret_key: str
    publishable_key: str
    api: httpx.Client
    images: ImageServer

    def stats(self) -> dict:
        return self.api.get("/v1/catalog/stats").json()


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Shop:
    workdir = tmp_path_factory.mktemp("portal")
    with ImageServer() as images:
        products = []
        for pid, title, shape, rgb, category, price, in_stock in CATALOGUE:
            images.add_image(f"/{pid}.png", product_png(shape, rgb))
            products.append({"id": pid, "image_url": images.url(f"/{pid}.png"), "title": title, "category": category,
                             "price": price, "currency": "EUR", "in_stock": in_stock, "brand": "Acme",
                             "attributes": {"colour": title.split()[0].lower()}})
        products.append({"id": "sku-lost-photo", "image_url": images.url("/gone.png"), "title": "Lost photo",
                         "category": "shoes", "price": 10.0})
        env = trooply_env(workdir / "data")
        try:
            with serving(env, workdir / "serve.log") as url:
                tenant = create_tenant_cli(env)
                with httpx.Client(base_url=url, headers=auth(tenant["secret_key"]), timeout=30) as api:
                    job = api.post("/v1/products", json={"products": products}).json()
                    _wait_for_job(api, job["job_id"])
                    yield Shop(url, tenant["secret_key"], tenant["publishable_key"], api, images)
        finally:
            print((workdir / "serve.log").read_text()[-4000:])  # shown when a test fails


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> Path:
    return spoken_wav(SPOKEN_QUERY, tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="module")
def browser(spoken: Path) -> Browser:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: tests/run.sh installs Debian's chromium package")
    # The microphone is Chromium's fake capture device playing real speech: MediaRecorder records it as it would
    # a shopper's voice, and no permission prompt waits for a click.
    microphone = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                  f"--use-file-for-fake-audio-capture={spoken}"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + microphone)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser: Browser, shop: Shop) -> Page:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1440, "height": 960})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    # A policy violation means a feature the page relies on is blocked in production too.
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text else None)
    page.problems = problems
    yield page
    context.close()
    assert not problems, problems


def shot(page: Page, name: str, full_page: bool = True) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # sticky bars sit where a full-page capture expects them
    # Bars grow with a short transition: capture them where they end.
    page.evaluate("Promise.all(document.getAnimations().filter(a => a.effect.getTiming().iterations !== Infinity)"
                  ".map(a => a.finished))")
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=full_page)


def sign_in(page: Page, shop: Shop) -> None:
    if page.url.startswith(shop.url) and page.evaluate("sessionStorage.length") > 0:
        return
    page.goto(f"{shop.url}/portal")
    page.get_by_test_id("api-key-input").fill(shop.secret_key)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("catalog-counts")).to_be_visible()


def go(page: Page, route: str) -> None:
    page.evaluate(f"window.location.hash = '#/{route}'")


def test_sign_in_shows_the_catalogue_counts(page: Page, shop: Shop) -> None:
    page.goto(f"{shop.url}/portal")
    assert page.url.endswith("/portal/")
    shot(page, "01-sign-in")

    page.get_by_test_id("api-key-input").fill("sk_not-a-real-key")
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("sign-in-error")).to_contain_text("not valid")
    page.get_by_test_id("api-key-input").fill(shop.publishable_key)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("sign-in-error")).to_contain_text("publishable key")

    page.get_by_test_id("api-key-input").fill(shop.secret_key)
    page.get_by_test_id("sign-in").click()
    counts = page.get_by_test_id("catalog-counts")
    expect(counts).to_be_visible()
    stats = shop.stats()
    assert stats["counts"] == {"pending": 0, "indexed": len(CATALOGUE), "failed": 1}
    for status, n in stats["counts"].items():
        expect(page.get_by_test_id(f"count-{status}")).to_have_text(str(n))
    expect(page.get_by_test_id("count-total")).to_have_text(str(stats["total"]))
    # The failed product is listed with its code and a retry button.
    failed_row = page.locator("tr[data-product-id='sku-lost-photo']")
    expect(failed_row).to_contain_text("image_not_found")
    expect(failed_row.get_by_test_id("retry-product")).to_be_visible()
    shot(page, "02-catalogue")

    # The key lives in this tab's sessionStorage only: not in the URL, localStorage or a cookie.
    assert shop.secret_key not in page.url
    assert page.evaluate("Object.values(sessionStorage)") == [shop.secret_key]
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []


def test_product_detail_shows_family_and_stored_colour(page: Page, shop: Shop) -> None:
    sign_in(page, shop)
    go(page, "catalog")
    page.get_by_role("radio", name="All").check()
    page.get_by_role("link", name="Red runner").click()
    expect(page.get_by_test_id("product-title")).to_have_text("Red runner")
    signals = shop.api.get("/v1/products/sku-red-runner/signals").json()
    expect(page.get_by_test_id("product-family")).to_have_text(signals["family"])
    swatch = page.get_by_test_id("colour-swatch")
    assert signals["image"]["colour_swatch"]
    for colour in signals["image"]["colour_swatch"]:
        expect(swatch).to_contain_text(colour["name"])
        expect(swatch).to_contain_text(f"{colour['family']} · {int(colour['share'] * 100 + 0.5)}%")
    expect(page.locator("img.detail-image")).to_have_js_property("naturalWidth", 240)
    shot(page, "03-product-detail")


def test_text_search_opens_a_match_analysis_that_matches_the_api(page: Page, shop: Shop) -> None:
    sign_in(page, shop)
    go(page, "search")
    page.get_by_test_id("search-text-input").fill("red sneaker")
    with page.expect_response(lambda r: r.url.endswith("/v1/search/text")) as answer:
        page.get_by_test_id("search-submit").click()
    envelope = answer.value.json()
    assert answer.value.status == 200 and envelope["results"]

    cards = page.get_by_test_id("result-card")
    expect(cards).to_have_count(len(envelope["results"]))
    assert [cards.nth(i).get_attribute("data-product-id") for i in range(cards.count())] == \
        [hit["id"] for hit in envelope["results"]]
    shot(page, "04-text-search")

    hit = envelope["results"][1]
    card = page.locator(f"[data-testid=result-card][data-product-id='{hit['id']}']")
    card.click()
    dialog = page.get_by_test_id("match-analysis")
    expect(dialog).to_be_visible()
    assert dialog.get_attribute("role") == "dialog" and dialog.get_attribute("aria-modal") == "true"
    expect(dialog).to_have_accessible_name(f"Match Analysis — {hit['metadata']['title']}")
    # The sentence exactly as the API wrote it, and every signal with its weight and contribution.
    assert page.get_by_test_id("match-explanation").inner_text() == hit["explanation"]
    breakdown = hit["_match_breakdown"]
    rows = dialog.locator("tr[data-signal]")
    assert sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.signal)")) == sorted(breakdown["weights"])
    for name, weight in breakdown["weights"].items():
        row = dialog.locator(f"tr[data-signal='{name}']")
        assert float(row.get_attribute("data-value")) == breakdown["signals"][name]
        assert float(row.get_attribute("data-weight")) == weight
        expect(row).to_contain_text(f"{breakdown['signals'][name] * weight:.4f}")
    for gate in breakdown["gates"]:
        expect(page.get_by_test_id("match-gates")).to_contain_text(gate)
    # "red" is a colour word: the product's own colours, named, with their shares.
    product_colours = shop.api.get(f"/v1/products/{hit['id']}/signals").json()["image"]["colour_swatch"]
    assert "colour" in breakdown["weights"] and product_colours
    for colour in product_colours:
        expect(page.get_by_test_id("match-colours")).to_contain_text(colour["name"])
    expect(page.get_by_test_id("match-profile")).to_have_text(envelope["profile"])
    expect(page.get_by_test_id("match-profile-confidence")).to_contain_text(f"{envelope['profile_confidence']:.2f}")
    expect(page.get_by_test_id("match-score")).to_have_text(f"{hit['similarity_score']:.4f}")
    shot(page, "05-match-analysis", full_page=False)  # a modal dims the viewport, not the whole page

    # Focus is trapped inside the dialog both ways; Escape closes it and gives focus back to the card.
    inside = "document.querySelector('[data-testid=match-analysis]').contains(document.activeElement)"
    assert page.evaluate(inside)
    for key in ["Tab"] * 8 + ["Shift+Tab"] * 8:
        page.keyboard.press(key)
        assert page.evaluate(inside), f"focus left the dialog after {key}"
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert page.evaluate("document.activeElement.dataset.productId") == hit["id"]

    # Keyboard only: a result card is a button, so Enter opens the analysis too.
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("match-analysis")).to_be_visible()
    page.get_by_test_id("dialog-close").click()
    expect(page.get_by_test_id("match-analysis")).to_have_count(0)


def test_the_keyword_weight_slider_and_the_matched_words(page: Page, shop: Shop) -> None:
    sign_in(page, shop)
    go(page, "search")
    page.get_by_test_id("mode-text").check()
    page.get_by_test_id("search-text-input").fill("navy runner")
    expect(page.get_by_test_id("search-keyword-weight")).to_be_disabled()  # the profile's default
    page.get_by_test_id("search-keyword-default").uncheck()
    page.get_by_test_id("search-keyword-weight").fill("1")
    expect(page.get_by_test_id("search-keyword-weight-value")).to_have_text("1.00")
    with page.expect_response(lambda r: r.url.endswith("/v1/search/text")) as answer:
        page.get_by_test_id("search-submit").click()
    assert answer.value.request.post_data_json["keyword_weight"] == 1
    envelope = answer.value.json()
    assert envelope["keyword_weight"] == 1.0 and envelope["results"][0]["id"] == "sku-navy-runner"
    expect(page.get_by_test_id("results-head")).to_contain_text("words 1.00")
    page.locator("[data-testid=result-card][data-product-id='sku-navy-runner']").click()
    terms = page.get_by_test_id("match-terms")
    expect(terms).to_contain_text("navy")
    expect(terms).to_contain_text("runner")
    expect(page.locator("tr[data-signal='keywords']")).to_have_count(1)
    page.get_by_test_id("dialog-close").click()
    page.get_by_test_id("search-keyword-default").check()


def test_upload_and_crop_searches(page: Page, shop: Shop) -> None:
    sign_in(page, shop)
    go(page, "search")
    query = {"name": "query.png", "mimeType": "image/png", "buffer": product_png("bag", (205, 150, 95), size=320)}

    page.get_by_test_id("mode-image").check()
    page.get_by_test_id("search-file-input").set_input_files(query)
    page.get_by_test_id("search-limit").fill("5")
    page.get_by_test_id("filter-category").fill("bags")
    with page.expect_response(lambda r: r.url.endswith("/v1/search/image")) as answer:
        page.get_by_test_id("search-submit").click()
    envelope = answer.value.json()
    assert answer.value.status == 200 and envelope["mode"] == "image"
    assert {hit["metadata"]["category"] for hit in envelope["results"]} == {"bags"}
    cards = page.get_by_test_id("result-card")
    expect(cards).to_have_count(len(envelope["results"]))
    shot(page, "06-upload-search")

    page.get_by_test_id("mode-crop").check()
    page.get_by_test_id("crop-file-input").set_input_files(query)
    surface = page.get_by_test_id("crop-surface")
    expect(surface.locator("img")).to_have_js_property("complete", True)
    box = surface.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.25)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.85, steps=5)
    page.mouse.up()
    drawn = [int(page.get_by_test_id(f"crop-{name}").input_value()) for name in ("x1", "y1", "x2", "y2")]
    # The box is in the original image's pixels (320 px), whatever size it is shown at.
    assert 50 <= drawn[0] < drawn[2] <= 320 and 60 <= drawn[1] < drawn[3] <= 320, drawn
    with page.expect_response(lambda r: r.url.endswith("/v1/search/crop")) as answer:
        page.get_by_test_id("search-submit").click()
    assert answer.value.status == 200 and answer.value.json()["mode"] == "crop", answer.value.text()
    expect(page.get_by_test_id("result-card")).to_have_count(len(answer.value.json()["results"]))
    shot(page, "07-crop-search")


def test_multi_image_and_fusion_searches(page: Page, shop: Shop) -> None:
    sign_in(page, shop)
    go(page, "search")
    first = {"name": "a.png", "mimeType": "image/png", "buffer": product_png("shirt", (40, 90, 200))}
    second = {"name": "b.png", "mimeType": "image/png", "buffer": product_png("shirt", (240, 205, 50))}

    page.get_by_test_id("mode-multi").check()
    page.get_by_test_id("search-multi-files").set_input_files([first])
    page.get_by_test_id("search-submit").click()
    expect(page.get_by_test_id("search-error")).to_have_text("Give 2 to 5 images in all.")  # checked before sending
    page.get_by_test_id("search-multi-urls").fill(shop.images.url("/sku-blue-tee.png"))
    with page.expect_response(lambda r: r.url.endswith("/v1/search/multi")) as answer:
        page.get_by_test_id("search-submit").click()
    assert answer.value.status == 200 and answer.value.json()["mode"] == "multi", answer.value.text()
    expect(page.get_by_test_id("result-card")).to_have_count(len(answer.value.json()["results"]))

    page.get_by_test_id("mode-fusion").check()
    page.get_by_test_id("search-fusion-file").set_input_files(second)
    page.get_by_test_id("search-fusion-text").fill("in blue")
    page.get_by_test_id("search-fusion-weight").fill("0.3")
    page.get_by_test_id("search-profile").select_option("apparel")
    with page.expect_response(lambda r: r.url.endswith("/v1/search/fusion")) as answer:
        page.get_by_test_id("search-submit").click()
    envelope = answer.value.json()
    assert answer.value.status == 200 and (envelope["mode"], envelope["profile"]) == ("fusion", "apparel")
    expect(page.get_by_test_id("results-head")).to_contain_text("apparel (1.00)")
    shot(page, "07b-fusion-search")


def test_voice_search_from_the_microphone_and_from_a_file(page: Page, shop: Shop, spoken: Path) -> None:
    sign_in(page, shop)
    go(page, "search")
    page.get_by_test_id("mode-voice").check()
    record = page.get_by_test_id("voice-record")
    record.click()
    expect(record).to_have_text("Stop")
    page.wait_for_timeout(3500)  # the fake microphone plays the spoken query in a loop
    record.click()
    expect(record).to_have_text("Record again")
    expect(page.locator("audio")).to_have_count(1)
    with page.expect_response(lambda r: r.url.endswith("/v1/search/voice"), timeout=120_000) as answer:
        page.get_by_test_id("search-submit").click()
    assert answer.value.status == 200, answer.value.text()
    heard = answer.value.json()["transcript"]
    assert "shoe" in heard.lower(), heard
    expect(page.get_by_test_id("voice-transcript")).to_contain_text(heard)
    shot(page, "07c-voice-search")

    page.get_by_test_id("voice-file-input").set_input_files(str(spoken))
    with page.expect_response(lambda r: r.url.endswith("/v1/search/voice"), timeout=120_000) as answer:
        page.get_by_test_id("search-submit").click()
    assert answer.value.status == 200 and "shoe" in answer.value.json()["transcript"].lower()
    expect(page.get_by_test_id("voice-transcript")).to_contain_text(answer.value.json()["transcript"])


def test_import_of_a_csv_follows_its_progress_to_the_end(page: Page, shop: Shop) -> None:
    sign_in(page, shop)
    for i in range(6):
        shop.images.add_image(f"/new-{i}.png", product_png("mug", (40 * i, 90, 160)))
    lines = ["id,title,image_url,category,price,in_stock,attributes.colour"]
    lines += [f"new-{i},Import mug {i},{shop.images.url(f'/new-{i}.png')},kitchen,{9 + i},true,blue" for i in range(6)]
    lines.append(f"new-bad,Bad price,{shop.images.url('/new-0.png')},kitchen,cheap,true,blue")  # line 8
    lines.append(f"new-gone,Missing image,{shop.images.url('/never.png')},kitchen,5,true,blue")
    lines.append(f"new-1,Duplicate,{shop.images.url('/new-1.png')},kitchen,5,true,blue")  # line 10
    csv = ("\n".join(lines) + "\n").encode()

    go(page, "import")
    page.get_by_test_id("import-file").set_input_files({"name": "products.csv", "mimeType": "text/csv", "buffer": csv})
    with page.expect_response(lambda r: r.url.endswith("/v1/imports")) as answer:
        page.get_by_test_id("import-submit").click()
    report = answer.value.json()
    assert (report["rows"], report["accepted"], report["unchanged"]) == (9, 7, 0)
    assert [(row["line"], row["code"]) for row in report["rejected"]] == [(8, "validation_error"), (10, "duplicate_id")]

    progress = page.get_by_test_id("import-progress")
    expect(progress).to_have_attribute("data-state", "completed", timeout=60_000)
    expect(progress).to_have_attribute("aria-valuenow", "7")
    expect(page.get_by_test_id("import-progress-text")).to_contain_text("7 of 7 processed · 6 indexed · 1 failed")
    rejected = page.get_by_test_id("import-rejected")
    expect(rejected.locator("tr[data-line='8']")).to_contain_text("price")
    expect(rejected.locator("tr[data-line='10']")).to_contain_text("duplicate_id")
    expect(page.get_by_test_id("import-failed")).to_contain_text("new-gone")
    expect(page.get_by_test_id("jobs-table")).to_contain_text(report["jobs"][0])
    shot(page, "08-import")
    assert shop.stats()["counts"]["indexed"] == len(CATALOGUE) + 6


def test_a_rule_is_created_with_the_filter_builder_and_deleted(page: Page, shop: Shop) -> None:
    sign_in(page, shop)
    go(page, "rules")
    page.get_by_test_id("rule-name").fill("Push the runners")
    first = page.get_by_test_id("condition").nth(0)
    first.get_by_test_id("condition-field").select_option("category")
    first.get_by_test_id("condition-value").fill("shoes")
    page.get_by_test_id("condition-add").click()
    second = page.get_by_test_id("condition").nth(1)
    second.get_by_test_id("condition-field").select_option("price")
    second.get_by_test_id("condition-operator").select_option("lte")
    second.get_by_test_id("condition-value").fill("100")
    page.get_by_test_id("rule-weight").fill("0.8")
    page.get_by_test_id("rule-profile").select_option("footwear")
    expect(page.get_by_test_id("filters-preview")).to_contain_text('"lte": 100')
    page.get_by_test_id("rule-create").click()

    row = page.get_by_test_id("rule-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Push the runners")
    [rule] = shop.api.get("/v1/rules").json()["rules"]
    assert (rule["filters"], rule["weight"], rule["profile"]) == ({"category": "shoes", "price": {"lte": 100}}, 0.8,
                                                                   "footwear")
    shot(page, "09-rules")

    row.get_by_test_id("rule-delete").click()
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("rule-row")).to_have_count(0)
    assert shop.api.get("/v1/rules").json()["rules"] == []


def test_a_feed_is_added_synced_and_its_report_shown(page: Page, shop: Shop) -> None:
    sign_in(page, shop)
    for i in range(3):
        shop.images.add_image(f"/feed-{i}.png", product_png("bag", (60 * i, 120, 90)))
    items = "".join(f"<item><g:id>feed-{i}</g:id><g:title>Feed bag {i}</g:title><g:price>{20 + i}.00 EUR</g:price>"
                    f"<g:image_link>{shop.images.url(f'/feed-{i}.png')}</g:image_link></item>" for i in range(3))
    items += f"<item><g:id>feed-bad</g:id><g:image_link>{shop.images.url('/feed-0.png')}</g:image_link>" \
             "<g:availability>soon</g:availability></item>"
    with FeedServer() as feed:
        feed.publish(f'<rss xmlns:g="http://base.google.com/ns/1.0"><channel>{items}</channel></rss>')
        go(page, "feeds")
        page.get_by_test_id("feed-url").fill(feed.url())
        page.get_by_test_id("feed-schedule").select_option("manual")
        page.get_by_test_id("feed-add").click()
        card = page.get_by_test_id("feed-card")
        expect(card).to_have_count(1)
        expect(card.get_by_test_id("feed-sync-status").first).to_have_text("completed", timeout=60_000)
        row = card.get_by_test_id("feed-sync-row").first
        expect(row.locator("[data-count='added']")).to_have_text("3")
        expect(row.locator("[data-count='rejected']")).to_have_text("1")
        card.get_by_test_id("feed-rejected").locator("summary").click()
        expect(card.get_by_test_id("feed-rejected")).to_contain_text("availability")
        shot(page, "10-feeds")
        [listed] = shop.api.get("/v1/feeds").json()["feeds"]
        assert listed["syncs"][0]["counts"]["added"] == 3

        card.get_by_test_id("feed-sync").click()  # unchanged: a conditional GET answered 304
        expect(card.get_by_test_id("feed-sync-row")).to_have_count(2)
        expect(card.get_by_test_id("feed-sync-status").first).to_have_text("not modified", timeout=60_000)
        card.get_by_test_id("feed-delete").click()
        page.get_by_test_id("confirm").click()
        expect(page.get_by_test_id("feed-card")).to_have_count(0)
    assert shop.api.get("/v1/products/feed-1").status_code == 200
def test_url_search_answers_the_first_click(page: Page, shop: Shop) -> None:
    sign_in(page, shop)
    go(page, "search")
    page.get_by_test_id("mode-url").check()
    submit = page.get_by_test_id("search-submit")
    before = submit.bounding_box()
    page.get_by_test_id("search-url-input").fill(shop.images.url("/sku-teal-mug.png"))
    expect(page.locator("[data-testid=url-preview] img")).to_have_js_property("naturalWidth", 240)
    page.get_by_test_id("search-url-input").blur()  # what a click elsewhere does first
    assert submit.bounding_box() == before, "the Search button moved under the pointer"
    with page.expect_response(lambda r: r.url.endswith("/v1/search/url")) as answer:
        submit.click()
    assert answer.value.status == 200 and answer.value.json()["results"]
    shot(page, "12-url-search")

    # Crop by URL: the picture shows while the URL is typed; the box typed in pixels; one click searches.
    page.get_by_test_id("mode-crop").check()
    page.get_by_role("textbox", name="…or image URL").fill(shop.images.url("/sku-tan-tote.png"))
    expect(page.locator("[data-testid=crop-surface] img")).to_have_js_property("naturalWidth", 240)
    for name, value in zip(("x1", "y1", "x2", "y2"), (20, 20, 220, 220), strict=True):
        page.get_by_test_id(f"crop-{name}").fill(str(value))
    with page.expect_response(lambda r: r.url.endswith("/v1/search/crop")) as answer:
        submit.click()
    assert answer.value.status == 200, answer.value.text()


def test_search_with_this_image_and_more_like_this_run_at_once(page: Page, shop: Shop) -> None:
    sign_in(page, shop)
    go(page, "products/sku-red-runner")
    with page.expect_response(lambda r: r.url.endswith("/v1/search/url")) as answer:
        page.get_by_test_id("search-with-image").click()
    assert answer.value.status == 200
    expect(page.get_by_test_id("result-card")).to_have_count(len(answer.value.json()["results"]))
    expect(page.get_by_test_id("search-url-input")).to_have_value(shop.images.url("/sku-red-runner.png"))

    go(page, "products/sku-red-runner")
    with page.expect_response(lambda r: r.url.endswith("/v1/search/similar")) as answer:
        page.get_by_test_id("product-similar").click()
    envelope = answer.value.json()
    assert answer.value.status == 200 and envelope["mode"] == "similar"
    assert "sku-red-runner" not in [hit["id"] for hit in envelope["results"]]
    expect(page.get_by_test_id("search-similar-input")).to_have_value("sku-red-runner")

    # From a result card: the same options, from that product.
    first = envelope["results"][0]["id"]
    card = page.locator(f".result-item:has([data-product-id='{first}'])")
    with page.expect_response(lambda r: r.url.endswith("/v1/search/similar")) as answer:
        card.get_by_test_id("result-similar").click()
    assert answer.value.request.post_data_json["product_id"] == first
    assert first not in [hit["id"] for hit in answer.value.json()["results"]]
    expect(page.get_by_test_id("search-similar-input")).to_have_value(first)
    shot(page, "13-more-like-this")


def test_group_by_and_diversity_reach_the_api(page: Page, shop: Shop) -> None:
    sign_in(page, shop)
    go(page, "search")
    page.get_by_test_id("mode-text").check()
    page.get_by_test_id("search-text-input").fill("product")
    page.get_by_test_id("search-group-by").fill("category")
    page.get_by_test_id("search-diversity").fill("0.3")
    with page.expect_response(lambda r: r.url.endswith("/v1/search/text")) as answer:
        page.get_by_test_id("search-submit").click()
    sent = answer.value.request.post_data_json
    assert (sent["group_by"], sent["group_size"], sent["diversity"]) == ("category", 1, 0.3)
    envelope = answer.value.json()
    groups = [hit["group"] for hit in envelope["results"]]
    named = [group for group in groups if group is not None]  # a product without a category is its own group
    assert answer.value.status == 200 and len(named) == len(set(named)) > 1
    expect(page.get_by_test_id("results-head")).to_contain_text("grouped by category")
    expect(page.get_by_test_id("result-group")).to_have_count(len(groups))
    shot(page, "14-grouped")


def test_prices_without_a_currency_use_the_accounts(page: Page, shop: Shop) -> None:
    sign_in(page, shop)
    go(page, "usage")
    page.get_by_test_id("default-currency").fill("usd")
    page.get_by_test_id("save-currency").click()
    expect(page.get_by_test_id("currency-example")).to_have_text("$12.50")
    assert shop.api.get("/v1/account").json()["default_currency"] == "USD"
    go(page, "products/sku-lost-photo")  # sent without a currency
    expect(page.get_by_test_id("product-title")).to_have_text("Lost photo")
    expect(page.locator("main")).to_contain_text("$10.00")
    shop.api.patch("/v1/account", json={"default_currency": None})


def test_at_phone_width_only_the_product_table_scrolls_sideways(browser: Browser, shop: Shop) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    phone = context.new_page()
    phone.set_default_timeout(TIMEOUT_MS)
    try:
        sign_in(phone, shop)
        expect(phone.get_by_test_id("product-table")).to_be_visible()
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        assert phone.evaluate("document.querySelector('.table-wrap').scrollWidth") > 390  # it scrolls in its box
        shot(phone, "15-phone-catalogue")
    finally:
        context.close()


def test_usage_then_key_rotation_then_sign_out(page: Page, shop: Shop) -> None:
    sign_in(page, shop)
    go(page, "usage")
    expect(page.get_by_test_id("usage-plan")).to_have_text("free")
    stats = shop.stats()
    expect(page.get_by_test_id("usage-products")).to_contain_text(f"{stats['total']} / {stats['allowance']:,}")
    expect(page.get_by_test_id("usage-detect")).to_have_text("0")
    shot(page, "10-usage")

    go(page, "keys")
    expect(page.get_by_test_id("keys-table")).to_contain_text(shop.secret_key[:8])
    page.get_by_test_id("rotate-keys").click()
    page.get_by_test_id("confirm").click()
    new_secret = page.get_by_test_id("new-secret-key")
    expect(new_secret).to_be_visible()
    secret = new_secret.inner_text()
    assert secret.startswith("sk_") and secret != shop.secret_key
    assert page.get_by_test_id("new-publishable-key").inner_text().startswith("pk_")
    expect(page.get_by_test_id("keys-table")).to_contain_text(secret[:8])
    shot(page, "11-keys-rotated")
    # The old key is refused at once (this process rotated it); the portal goes on with the new one.
    assert shop.api.get("/v1/catalog/stats").status_code == 401
    assert shop.api.get("/v1/catalog/stats", headers=auth(secret)).status_code == 200
    go(page, "catalog")
    indexed = shop.api.get("/v1/catalog/stats", headers=auth(secret)).json()["counts"]["indexed"]
    assert indexed >= len(CATALOGUE) + 6  # the catalogue and what earlier tests added
    expect(page.get_by_test_id("count-indexed")).to_have_text(str(indexed))

    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("api-key-input")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def _wait_for_job(api: httpx.Client, job_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.get(f"/v1/jobs/{job_id}").json()["status"] == "completed":
            return
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not complete")
