"""Merchant feeds read as products: Google Merchant Center XML and TSV, Shopify's product CSV export, each from a
small real-shaped file, mapped field by field; unsafe XML refused with its code; `auto` tells the formats apart."""

import io
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.support.image_server import ImageServer
from trooply.catalog.feed_formats import detect_format, feed_items
from trooply.catalog.feed_formats.records import plain_text, sale_applies
from trooply.catalog.imports import format_of, read_rows
from trooply.errors import InvalidRequest

CDN = "https://cdn.example.com"

GOOGLE_XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0">
  <channel>
    <title>Acme</title><link>https://acme.example.com</link><description>Acme feed</description>
    <item>
      <g:id>TSHIRT-RED-M</g:id>
      <title>Classic tee &amp; more</title>
      <description><![CDATA[<p>Soft <b>cotton</b> tee.</p><ul><li>Crew neck</li></ul>]]></description>
      <link>https://acme.example.com/tee?v=red-m</link>
      <g:image_link>{CDN}/tee-red.jpg</g:image_link>
      <g:additional_image_link>{CDN}/tee-red-back.jpg</g:additional_image_link>
      <g:additional_image_link>{CDN}/tee-red-side.jpg</g:additional_image_link>
      <g:price>25.00 USD</g:price>
      <g:sale_price>19.99 USD</g:sale_price>
      <g:availability>in_stock</g:availability>
      <g:brand>Acme</g:brand>
      <g:gtin>00012345678905</g:gtin>
      <g:mpn>AC-TEE-1</g:mpn>
      <g:condition>new</g:condition>
      <g:item_group_id>TSHIRT</g:item_group_id>
      <g:product_type>Apparel &gt; Tops &gt; T-Shirts</g:product_type>
      <g:google_product_category>Apparel &amp; Accessories &gt; Clothing &gt; Shirts &amp; Tops
      </g:google_product_category>
      <g:color>Red</g:color><g:size>M</g:size><g:gender>unisex</g:gender><g:age_group>adult</g:age_group>
      <g:material>cotton</g:material><g:pattern>solid</g:pattern><g:custom_label_0>summer</g:custom_label_0>
      <g:custom_label_4>bestseller</g:custom_label_4>
      <g:shipping><g:country>US</g:country><g:price>4.99 USD</g:price></g:shipping>
    </item>
    <item>
      <g:id>MUG-1</g:id><g:title>Mug</g:title><g:link>https://acme.example.com/mug</g:link>
      <g:image_link>{CDN}/mug.jpg</g:image_link><g:price>8 EUR</g:price>
      <g:sale_price>5 EUR</g:sale_price>
      <g:sale_price_effective_date>2001-01-01T00:00Z/2001-02-01T00:00Z</g:sale_price_effective_date>
      <g:availability>preorder</g:availability><g:google_product_category>505804</g:google_product_category>
    </item>
    <item>
      <g:id>BAD-PRICE</g:id><g:image_link>{CDN}/x.jpg</g:image_link><g:price>cheap</g:price>
    </item>
    <item>
      <g:id>NO-IMAGE</g:id><g:title>Ghost</g:title>
    </item>
    <item>
      <g:id>BAD-STOCK</g:id><g:image_link>{CDN}/y.jpg</g:image_link><g:availability>maybe</g:availability>
    </item>
  </channel>
</rss>
"""


def items(text: str, fmt: str) -> list:
    return list(feed_items(io.StringIO(text, newline=""), fmt))


def test_google_xml_fields_map_to_products() -> None:
    tee, mug, bad_price, no_image, bad_stock = items(GOOGLE_XML, "google_xml")
    product = tee.product
    assert (tee.line, product.id, product.title, product.url) == (
        1, "TSHIRT-RED-M", "Classic tee & more", "https://acme.example.com/tee?v=red-m")
    assert product.description == "Soft cotton tee.\nCrew neck"
    # The sale price is the price while it applies; the regular one is kept.
    assert (product.price, product.currency, product.in_stock, product.brand) == (19.99, "USD", True, "Acme")
    assert product.category == "T-Shirts"  # the most specific level of the merchant's product_type
    assert product.image_url == f"{CDN}/tee-red.jpg"
    assert tee.images == [f"{CDN}/tee-red.jpg", f"{CDN}/tee-red-back.jpg", f"{CDN}/tee-red-side.jpg"]
    assert product.attributes == {
        "regular_price": 25.0, "availability": "in_stock", "product_type": "Apparel > Tops > T-Shirts",
        "google_product_category": "Apparel & Accessories > Clothing > Shirts & Tops", "gtin": "00012345678905",
        "mpn": "AC-TEE-1", "condition": "new", "color": "Red", "size": "M", "gender": "unisex",
        "age_group": "adult", "material": "cotton", "pattern": "solid", "custom_label_0": "summer",
        "custom_label_4": "bestseller", "group_id": "TSHIRT"}
    # A sale outside its period leaves the price alone; preorder is not in stock; a bare taxonomy id is no category.
    assert (mug.product.price, mug.product.currency, mug.product.in_stock, mug.product.category) == (
        8.0, "EUR", False, None)
    assert mug.product.attributes == {"availability": "preorder", "google_product_category": "505804"}
    assert (bad_price.line, bad_price.problem.product_id, bad_price.problem.field) == (3, "BAD-PRICE", "price")
    assert "'cheap' is not a price" in bad_price.problem.message
    assert (no_image.problem.field, no_image.problem.message) == ("image_link", "image_link: the item has no image")
    assert bad_stock.problem.field == "availability" and "'maybe'" in bad_stock.problem.message


def test_google_tsv_maps_like_the_xml_with_comma_separated_extra_images() -> None:
    header = ("id\ttitle\tdescription\tlink\timage_link\tadditional_image_link\tprice\tsale_price\tavailability\t"
              "brand\titem_group_id\tproduct_type\tcolor\n")
    rows = (f"dress-1\tSummer dress\tLight\thttps://s.example.com/d1\t{CDN}/d1.jpg\t{CDN}/d1b.jpg, {CDN}/d1c.jpg\t"
            "59.90 EUR\t\tout of stock\tNoa\tDRESS\tWomen > Dresses > Maxi\tblue\n"
            f"dress-2\tDress two\t\t\t{CDN}/d2.jpg\t\t1,299.00 USD\t999 USD\tbackorder\t\t\t\t\n"
            f"dress-3\tBad\t\t\t{CDN}/d3.jpg\t\tfree\t\tin_stock\t\t\t\t\n")
    first, second, third = items(header + rows, "google_tsv")
    assert (first.line, first.product.id, first.product.price, first.product.currency) == (2, "dress-1", 59.9, "EUR")
    assert first.product.in_stock is False and first.product.category == "Maxi"
    assert first.images == [f"{CDN}/d1.jpg", f"{CDN}/d1b.jpg", f"{CDN}/d1c.jpg"]
    assert first.product.attributes["group_id"] == "DRESS" and first.product.attributes["color"] == "blue"
    assert (second.product.price, second.product.attributes["regular_price"]) == (999.0, 1299.0)
    assert (third.line, third.problem.field) == (4, "price")
    with pytest.raises(InvalidRequest) as refused:
        items("title\tprice\nx\t1 USD\n", "google_tsv")
    assert refused.value.code == "invalid_import_file" and "'id'" in refused.value.message


SHOPIFY_HEADER = ("Handle,Title,Body (HTML),Vendor,Product Category,Type,Tags,Published,Option1 Name,Option1 Value,"
                  "Option2 Name,Option2 Value,Option3 Name,Option3 Value,Variant SKU,Variant Inventory Tracker,"
                  "Variant Inventory Qty,Variant Inventory Policy,Variant Price,Variant Compare At Price,"
                  "Variant Barcode,Image Src,Image Position,Variant Image,Status\n")
SHOPIFY_ROWS = (
    # A product with two variants: one with its own image, one without; the images come in position order.
    'classic-tee,Classic Tee,"<p>Soft &amp; light<br>cotton</p><script>x()</script>",Acme,'
    'Apparel & Accessories > Clothing > Shirts,T-Shirts,"summer, cotton",true,Colour,Red,Size,M,,,TEE-RED-M,'
    f'shopify,3,deny,25.00,30.00,012345,{CDN}/tee-2.jpg,2,{CDN}/tee-red.jpg,active\n'
    f'classic-tee,,,,,,,,,Blue,,L,,,,shopify,0,deny,25.00,,,{CDN}/tee-1.jpg,1,,\n'
    f'classic-tee,,,,,,,,,,,,,,,,,,,,,{CDN}/tee-3.jpg,3,,\n'
    # A product without variants (Default Title) and without a SKU: the handle is its id.
    f'mug,Mug,,Acme,,Mugs,,true,Title,Default Title,,,,,,,,,9.50,,,{CDN}/mug.jpg,1,,draft\n'
    # A variant whose price cannot be read, and a product with no image.
    f'cap,Cap,,Acme,,Hats,,true,Size,One,,,,,CAP-1,,,,ten,,,{CDN}/cap.jpg,1,,active\n'
    'ghost,Ghost,,Acme,,,,true,,,,,,,GHOST-1,,,,5,,,,,,active\n')


def test_shopify_variants_become_products_sharing_their_handle() -> None:
    red, blue, mug, cap, ghost = items(SHOPIFY_HEADER + SHOPIFY_ROWS, "shopify_csv")
    assert (red.line, red.product.id, red.product.title, red.product.brand) == (2, "TEE-RED-M", "Classic Tee", "Acme")
    assert red.product.description == "Soft & light\ncotton"
    assert (red.product.price, red.product.in_stock, red.product.category) == (25.0, True, "T-Shirts")
    assert red.product.attributes == {
        "regular_price": 30.0, "product_category": "Apparel & Accessories > Clothing > Shirts",
        "tags": "summer, cotton", "group_id": "classic-tee", "gtin": "012345", "colour": "Red", "size": "M"}
    # Its own image first, then the handle's in Image Position order.
    assert red.images == [f"{CDN}/tee-red.jpg", f"{CDN}/tee-1.jpg", f"{CDN}/tee-2.jpg", f"{CDN}/tee-3.jpg"]
    # No SKU: the handle and the option values; no image of its own: the handle's, in order; no stock.
    assert (blue.line, blue.product.id, blue.product.in_stock) == (3, "classic-tee-blue-l", False)
    assert blue.images == [f"{CDN}/tee-1.jpg", f"{CDN}/tee-2.jpg", f"{CDN}/tee-3.jpg"]
    assert blue.product.description == red.product.description and blue.product.attributes["size"] == "L"
    # Draft products are not sellable; "Default Title" is no option.
    assert (mug.product.id, mug.product.in_stock, mug.product.price) == ("mug", False, 9.5)
    assert "title" not in mug.product.attributes
    assert (cap.line, cap.problem.product_id, cap.problem.field) == (6, "CAP-1", "Variant Price")
    assert (ghost.line, ghost.problem.field) == (7, "Image Src")


def test_unsafe_xml_is_refused_with_its_code() -> None:
    laughs = ('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
              '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><rss><channel><item><id>&lol3;</id></item></channel></rss>')
    external = ('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
                '<rss><channel><item><title>&secret;</title></item></channel></rss>')
    for document, code in ((laughs, "xml_entities_forbidden"), (external, "xml_external_reference_forbidden"),
                           ('<rss><channel><item><title>x</item></channel></rss>', "invalid_feed"),
                           ("<html><body/></html>", "invalid_feed")):
        with pytest.raises(InvalidRequest) as refused:
            items(document, "google_xml")
        assert refused.value.code == code, document


def test_an_external_dtd_is_never_fetched() -> None:
    with ImageServer() as server:
        server.add_image("/evil.dtd", b'<!ENTITY secret "leaked">', "application/xml-dtd")
        document = (f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{server.url("/evil.dtd")}">'
                    f'<rss><channel><item><title>&secret;</title></item></channel></rss>')
        with pytest.raises(InvalidRequest) as refused:
            items(document, "google_xml")
        assert refused.value.code == "invalid_feed" and "undefined entity" in refused.value.message
        assert server.hits("/evil.dtd") == 0


def test_the_import_reads_feeds_and_auto_tells_the_formats_apart() -> None:
    assert detect_format("\ufeff<?xml version='1.0'?><rss>") == "google_xml"
    assert detect_format("id\ttitle\timage_link\n") == "google_tsv"
    assert detect_format(SHOPIFY_HEADER) == "shopify_csv"
    assert detect_format("id,image_url\n") == "csv" and detect_format('{"id": 1}\n') == "jsonl"
    assert format_of("products_export.csv") == "auto" and format_of("feed.xml") == "google_xml"
    assert format_of("feed.txt") == "auto" and format_of("x", "shopify_csv") == "shopify_csv"
    rows = list(read_rows(SHOPIFY_HEADER + SHOPIFY_ROWS, "auto"))
    assert [row.product.id for row in rows if row.product] == ["TEE-RED-M", "classic-tee-blue-l", "mug"]
    assert [(row.line, row.rejected.field) for row in rows if row.rejected] == [(6, "Variant Price"),
                                                                                (7, "Image Src")]
    rows = list(read_rows(GOOGLE_XML.splitlines(keepends=True), "auto"))  # lines, as `trooply import` reads
    assert [row.rejected.line for row in rows if row.rejected] == [3, 4, 5]
    duplicate = list(read_rows(GOOGLE_XML.replace("MUG-1", "TSHIRT-RED-M"), "google_xml"))[1]
    assert (duplicate.rejected.code, duplicate.rejected.message) == ("duplicate_id", "the id is already on line 1")


def test_plain_text_and_sale_periods() -> None:
    assert plain_text("<h2>Hi</h2><p>a&nbsp;b  c</p><style>p{}</style>") == "Hi\na b c"  # a no-break space is a space
    assert plain_text("word " * 5, limit=12) == "word word"
    now = datetime(2025, 6, 1, tzinfo=UTC)
    assert sale_applies("2025-05-01T00:00-0800/2025-07-01T00:00-0800", now)
    assert not sale_applies("2025-07-01T00:00Z/2025-08-01T00:00Z", now)
    assert sale_applies(None, now) and sale_applies("garbage", now)


def _big_feed(count: int) -> Iterator[str]:
    yield '<?xml version="1.0"?><rss xmlns:g="http://base.google.com/ns/1.0"><channel>'
    for n in range(count):
        yield (f"<item><g:id>p{n}</g:id><g:title>Product {n} {'x' * 200}</g:title>"
               f"<g:image_link>{CDN}/{n}.jpg</g:image_link><g:price>{n}.00 USD</g:price></item>")
    yield "</channel></rss>"


def test_xml_is_streamed_in_memory_independent_of_the_feed_size() -> None:
    """The memory held while reading item 24,000 is what it was at item 12,000 (3 MB of text later)."""
    held: dict[int, int] = {}
    tracemalloc.start()
    try:
        for number, item in enumerate(feed_items(_big_feed(24_000), "google_xml"), start=1):
            assert item.product is not None
            if number in (12_000, 24_000):
                held[number] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # Bounded caches (pydantic-core keeps 16k validated strings) are full by item 12,000; a feed held whole would add
    # about as much again as the first 12,000 items took (~1.1 MB), a bounded reader at most cache noise (seen 80 KB).
    assert held[24_000] - held[12_000] < 256 * 1024, held


def test_shopify_options_keep_the_merchants_names() -> None:
    row = (f'tee,Tee,,Acme,,Shirts,,true,Größe,M,サイズ,44,カラー,Red,TEE-1,,,,20.00,,,{CDN}/tee.jpg,1,,active\n'
           f'mug,Mug,,Acme,,Mugs,,true,Size,S,size,M,,,MUG-1,,,,9.00,,,{CDN}/mug.jpg,1,,active\n')
    tee, mug = items(SHOPIFY_HEADER + row, "shopify_csv")
    assert {name: tee.product.attributes[name] for name in ("größe", "サイズ", "カラー")} == {
        "größe": "M", "サイズ": "44", "カラー": "Red"}
    assert (mug.product.attributes["size"], mug.product.attributes["size_2"]) == ("S", "M")  # never overwritten


@pytest.mark.parametrize("fmt, text", [
    ("shopify_csv", SHOPIFY_HEADER + f'tee,Te\x00e,,Acme,,Shirts,,true,,,,,,,TEE-1,,,,20.00,,,{CDN}/t.jpg,1,,active\n'),
    ("google_tsv", f"id\ttitle\timage_link\tprice\nd-1\tTi\x00tle\t{CDN}/d.jpg\t5.00 EUR\n"),
])
def test_a_nul_in_a_feed_is_a_rejected_row_not_a_stored_product(fmt: str, text: str) -> None:
    [item] = items(text, fmt)
    assert item.problem is not None and item.problem.field.lower() == "title"  # the feed's own field name
    assert "NUL" in item.problem.message


def test_a_nul_is_refused_in_every_text_field_of_a_product() -> None:
    from pydantic import ValidationError

    from trooply.catalog.schemas import ProductIn

    good = {"id": "p", "image_url": f"{CDN}/p.jpg", "title": "ok", "attributes": {"size": "M"}}
    ProductIn.model_validate(good)
    for field, value in [("title", "a\x00"), ("brand", "b\x00"), ("attributes", {"size": "M\x00"}),
                         ("attributes", {"si\x00ze": "M"}), ("image_url", f"{CDN}/p\x00.jpg")]:
        with pytest.raises(ValidationError):
            ProductIn.model_validate(good | {field: value})
