"""Google Merchant Center feeds: XML (RSS 2.0 or Atom with the `g:` namespace), streamed item by item and parsed
safely, and TSV (a header row of attribute names). Both map through the same table (`google_item`)."""

from collections.abc import Iterable, Iterator
from typing import Any, Protocol
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import iterparse

from trooply.catalog.csv_lines import StrictCsv
from trooply.catalog.feed_formats.records import (
    FeedItem,
    FieldError,
    ProductDraft,
    category_levels,
    csv_problem_item,
    most_specific,
    parse_price,
    plain_text,
    problem_item,
    sale_applies,
)
from trooply.errors import InvalidRequest

GOOGLE_NAMESPACE = "http://base.google.com/ns/1.0"
_ITEM_TAGS = ("item", "entry")  # RSS 2.0, Atom
_AVAILABILITY = {"in_stock": True, "out_of_stock": False, "preorder": False, "backorder": False}
# Feed attributes kept as product attributes under the same name.
_KEPT_ATTRIBUTES = ("gtin", "mpn", "condition", "color", "size", "gender", "age_group", "material", "pattern",
                    *(f"custom_label_{n}" for n in range(5)))
GROUP_ATTRIBUTE = "group_id"  # item_group_id, and a Shopify handle: what `group_by` groups variants by
XML_CHUNK = 64 * 1024

Fields = dict[str, list[str]]  # a feed attribute's values in order (additional_image_link repeats)


class TextReader(Protocol):
    def read(self, size: int = -1, /) -> str | bytes: ...


def google_item(line: int, fields: Fields) -> FeedItem:
    """One Merchant Center item, mapped (see README, "Catalogue feeds")."""
    def first(name: str) -> str:
        values = fields.get(name)
        return values[0].strip() if values else ""

    product_id = first("id") or None
    draft = ProductDraft()
    try:
        draft.set("id", product_id, "id")
        draft.set("title", first("title"), "title")
        draft.set("description", plain_text(first("description")) if first("description") else None, "description")
        draft.set("url", first("link"), "link")
        draft.set("brand", first("brand"), "brand")
        _prices(draft, first("price"), first("sale_price"), first("sale_price_effective_date"))
        _availability(draft, first("availability"))
        _category(draft, first("product_type"), first("google_product_category"))
        for name in _KEPT_ATTRIBUTES:
            draft.attribute(name, first(name), name)
        draft.attribute(GROUP_ATTRIBUTE, first("item_group_id"), "item_group_id")
    except FieldError as error:
        return problem_item(line, product_id, error)
    images = [first("image_link")] if first("image_link") else []
    for value in fields.get("additional_image_link", []):
        images.extend(url.strip() for url in value.split(",") if url.strip())
    return draft.item(line, images, "image_link")


def _prices(draft: ProductDraft, price: str, sale_price: str, sale_period: str) -> None:
    if price:
        amount, currency = parse_price("price", price)
        draft.set("price", amount, "price")
        draft.set("currency", currency, "price")
    if sale_price and sale_applies(sale_period):
        sale, currency = parse_price("sale_price", sale_price)
        if price:
            draft.attribute("regular_price", draft.values["price"], "price")
        draft.set("price", sale, "sale_price")
        draft.set("currency", currency, "sale_price")


def _availability(draft: ProductDraft, availability: str) -> None:
    if not availability:
        return
    key = availability.lower().replace(" ", "_")
    if key not in _AVAILABILITY:
        raise FieldError("availability", f"{availability!r} is not one of {', '.join(_AVAILABILITY)}")
    draft.set("in_stock", _AVAILABILITY[key], "availability")
    draft.attribute("availability", key, "availability")


def _category(draft: ProductDraft, product_type: str, google_category: str) -> None:
    """The merchant's own product_type first; Google's category when it is a path (not a bare taxonomy id)."""
    for name, path in (("product_type", product_type), ("google_product_category", google_category)):
        if path and not path.isdigit() and "category" not in draft.values:
            draft.set("category", most_specific(path), name)
        if path:
            draft.attribute(name, " > ".join(category_levels(path)) or path, name)


def xml_items(source: TextReader) -> Iterator[FeedItem]:
    """Every <item> (or Atom <entry>) in order, parsed incrementally: each item is dropped from the tree once
    mapped, so memory holds one item whatever the feed's size. DTD entities and external references are refused
    (defusedxml), which also stops entity-expansion bombs."""
    stack: list[Element] = []
    number = 0
    try:
        for event, element in iterparse(_Chunks(source), events=("start", "end"), forbid_dtd=False,
                                        forbid_entities=True, forbid_external=True):
            if event == "start":
                if not stack and (root := _local(element.tag)) not in ("rss", "feed"):
                    raise InvalidRequest(f"an XML feed is RSS 2.0 (<rss>) or Atom (<feed>), not <{root}>",
                                         code="invalid_feed")
                stack.append(element)
                continue
            stack.pop()
            if _local(element.tag) in _ITEM_TAGS and len(stack) <= 2:
                number += 1
                yield google_item(number, _fields_of(element))
                if stack:
                    stack[-1].remove(element)
    except EntitiesForbidden as error:
        if error.sysid or error.pubid:
            raise _external_reference() from None
        raise InvalidRequest("the XML declares entities, which a feed never needs (an expansion bomb is one); "
                             "refused", code="xml_entities_forbidden") from None
    except ExternalReferenceForbidden:
        raise _external_reference() from None
    except DTDForbidden:  # not raised with forbid_dtd=False; kept so a stricter parser reads the same
        raise InvalidRequest("the XML has a DTD; refused", code="xml_dtd_forbidden") from None
    except ParseError as error:
        line, column = error.position
        raise InvalidRequest(f"the XML cannot be read at line {line}, column {column} (after item {number}): "
                             f"{error}", code="invalid_feed", details={"line": line, "item": number}) from None


def _external_reference() -> InvalidRequest:
    return InvalidRequest("the XML refers to an external entity, which could read files or reach other hosts; "
                          "refused", code="xml_external_reference_forbidden")


def _fields_of(item: Element) -> Fields:
    fields: Fields = {}
    for child in item:
        namespace, name = _split(child.tag)
        if namespace not in ("", GOOGLE_NAMESPACE, "http://www.w3.org/2005/Atom"):
            continue
        if name == "link" and child.get("href"):  # Atom's <link href="…"/>
            value = child.get("href", "")
        elif len(child):
            continue  # a nested attribute (shipping, tax): not mapped
        else:
            value = child.text or ""
        fields.setdefault(name, []).append(value)
    return fields


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _local(tag: str) -> str:
    return _split(tag)[1]


class _Chunks:
    """The parser reads text a chunk at a time: a feed on one line is still read in bounded pieces."""

    def __init__(self, source: TextReader) -> None:
        self._source = source

    def read(self, size: int = XML_CHUNK) -> str | bytes:
        return self._source.read(min(size, XML_CHUNK) if size > 0 else XML_CHUNK)


def tsv_items(lines: Iterable[str]) -> Iterator[FeedItem]:
    """A Merchant Center TSV: a header of attribute names (a `g:` prefix allowed), one item per row;
    additional_image_link holds several URLs separated by commas."""
    reader = StrictCsv(lines, delimiter="\t", kind="TSV")
    names = reader.header()
    if names is None:
        return
    header = [name.lower().removeprefix("g:") for name in names]
    for required in ("id", "image_link"):
        if required not in header:
            raise InvalidRequest(f"the TSV header has no {required!r} column (a Merchant Center feed names its "
                                 "attributes: id, title, image_link, price, …)", code="invalid_import_file")
    for line, cells in reader.records():
        if isinstance(cells, str):
            yield csv_problem_item(line, cells)
            continue
        fields: dict[str, Any] = {}
        for name, cell in zip(header, cells, strict=False):
            fields.setdefault(name, []).append(cell)
        yield google_item(line, fields)
