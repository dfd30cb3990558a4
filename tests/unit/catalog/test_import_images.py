"""Several images per product in import files and feeds: CSV `images` separated by "|", JSONL `images`, and the
extra images feeds already read (Merchant Center `additional_image_link`, Shopify's extra `Image Src` rows)."""

import io

import pytest

from trooply.catalog.feed_formats import feed_items
from trooply.catalog.imports import read_rows
from trooply.catalog.schemas import MAX_IMAGES
from trooply.errors import InvalidRequest

CDN = "https://cdn.example.com"


def test_a_csv_images_column_holds_every_image_main_first() -> None:
    text = ("id,image_url,images,title\n"
            f"shoe,{CDN}/front.jpg,{CDN}/side.jpg | {CDN}/back.jpg,Trail runner\n"
            f"bag,,{CDN}/bag.jpg|{CDN}/bag-open.jpg,Tote\n"
            f"cap,{CDN}/cap.jpg,,Cap\n")
    shoe, bag, cap = (row.product for row in read_rows(text, "csv"))
    assert shoe.images == [f"{CDN}/front.jpg", f"{CDN}/side.jpg", f"{CDN}/back.jpg"]
    assert (bag.image_url, bag.images) == (f"{CDN}/bag.jpg", [f"{CDN}/bag.jpg", f"{CDN}/bag-open.jpg"])
    assert (cap.image_url, cap.images) == (f"{CDN}/cap.jpg", None)  # stored as before
    assert shoe.metadata()["images"] == shoe.images  # skip_unchanged compares the whole list


def test_a_csv_of_images_alone_is_accepted_and_a_bad_image_is_rejected_with_its_field() -> None:
    rows = list(read_rows(f"id,images\nok,{CDN}/a.jpg|{CDN}/b.jpg\nbad,{CDN}/a.jpg|ftp://x/b.jpg\n", "csv"))
    assert rows[0].product is not None and rows[0].product.images == [f"{CDN}/a.jpg", f"{CDN}/b.jpg"]
    assert rows[1].rejected is not None and rows[1].rejected.field == "images.1"
    with pytest.raises(InvalidRequest, match="no 'image_url' column"):
        list(read_rows("id,title\nx,y\n", "csv"))


def test_jsonl_takes_images_as_posted() -> None:
    (row,) = read_rows(f'{{"id": "shoe", "images": ["{CDN}/front.jpg", "{CDN}/side.jpg"]}}\n', "jsonl")
    assert row.product.image_url == f"{CDN}/front.jpg" and row.product.images == [f"{CDN}/front.jpg",
                                                                                   f"{CDN}/side.jpg"]


def test_feed_items_carry_their_extra_images_into_the_product() -> None:
    extra = "".join(f"<g:additional_image_link>{CDN}/tee-{i}.jpg</g:additional_image_link>" for i in range(150))
    feed = (f'<rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>TEE</g:id>'
            f"<g:image_link>{CDN}/tee.jpg</g:image_link>{extra}</item>"
            f"<item><g:id>MUG</g:id><g:image_link>{CDN}/mug.jpg</g:image_link></item></channel></rss>")
    tee, mug = feed_items(io.StringIO(feed), "google_xml")
    assert tee.product.images == [f"{CDN}/tee.jpg", *(f"{CDN}/tee-{i}.jpg" for i in range(MAX_IMAGES - 1))]
    assert tee.images == tee.product.images
    assert mug.product.images is None and mug.images == [f"{CDN}/mug.jpg"]
