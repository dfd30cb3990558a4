"""Shopify's product CSV export: the rows of one `Handle` (contiguous in an export) are one product's variants and
images. Each variant becomes a product sharing the handle's text and images; rows are read one handle at a time,
so memory holds one product's rows whatever the file's size."""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from trooply.catalog.csv_lines import StrictCsv
from trooply.catalog.feed_formats.google import GROUP_ATTRIBUTE
from trooply.catalog.feed_formats.records import (
    FeedItem,
    FieldError,
    ProductDraft,
    category_levels,
    csv_problem_item,
    most_specific,
    parse_amount,
    plain_text,
    problem_item,
)
from trooply.errors import InvalidRequest
from trooply.index.filters import MAX_ATTRIBUTE_KEY

OPTIONS = (1, 2, 3)
_VARIANT_COLUMNS = ("Variant SKU", "Variant Price", "Option1 Value", "Option2 Value", "Option3 Value")
_DEFAULT_OPTION = "Default Title"  # Shopify's option of a product without variants
# What a handle's later rows are kept for (its variants and images), and what its first row adds (the product's text).
_ROW_COLUMNS = frozenset({*_VARIANT_COLUMNS, "Variant Compare At Price", "Variant Inventory Qty",
                          "Variant Inventory Tracker", "Variant Inventory Policy", "Variant Barcode", "Variant Image",
                          "Image Src", "Image Position"})
_PRODUCT_COLUMNS = _ROW_COLUMNS | {"Title", "Body (HTML)", "Vendor", "Type", "Product Category", "Tags", "Status",
                                   *(f"Option{n} Name" for n in OPTIONS)}
# Shopify allows 2,048 variants and 250 images a product: a handle's rows are held until the next handle, so
# their number is bounded, and a row beyond is refused with its line.
MAX_HANDLE_ROWS = 2500
_NOT_ID = re.compile(r"[^A-Za-z0-9._~-]+")


@dataclass(slots=True)
class _Row:
    """The cells of a row that the mapping reads and the row fills, stripped."""

    line: int
    cells: dict[str, str]

    def get(self, column: str) -> str:
        return self.cells.get(column, "")


@dataclass
class _Handle:
    handle: str
    tracker_column: bool  # the export has Variant Inventory Tracker: an empty one means not tracked
    rows: list[_Row] = field(default_factory=list)


def is_shopify_header(names: list[str]) -> bool:
    return "Handle" in names and any(name in names for name in ("Variant SKU", "Variant Price", "Body (HTML)"))


def shopify_items(lines: Iterable[str]) -> Iterator[FeedItem]:
    reader = StrictCsv(lines)
    header = reader.header()
    if header is None:
        return
    if not is_shopify_header(header):
        raise InvalidRequest("not a Shopify product export: its header has Handle, Title, Body (HTML), Variant SKU, "
                             "Variant Price, Image Src, …", code="invalid_import_file")
    handle_column = header.index("Handle")
    group: _Handle | None = None
    for line, cells in reader.records():
        if isinstance(cells, str):
            yield csv_problem_item(line, cells)
            continue
        handle = cells[handle_column].strip() if handle_column < len(cells) else ""
        if not handle:
            yield problem_item(line, None, FieldError("Handle", "a row needs its product's handle"))
            continue
        if group is None or group.handle != handle:
            if group is not None:
                yield from _variants(group)
            group = _Handle(handle, "Variant Inventory Tracker" in header)
        elif len(group.rows) >= MAX_HANDLE_ROWS:
            yield problem_item(line, None, FieldError("Handle", f"the product {handle!r} has more than "
                                                                f"{MAX_HANDLE_ROWS:,} rows (Shopify allows 2,048 "
                                                                "variants and 250 images): this row is not read"))
            continue
        group.rows.append(_row(line, header, cells, _ROW_COLUMNS if group.rows else _PRODUCT_COLUMNS))
    if group is not None:
        yield from _variants(group)


def _row(line: int, header: list[str], cells: list[str], columns: frozenset[str]) -> _Row:
    return _Row(line, {name: text for name, cell in zip(header, cells, strict=False)
                       if name in columns and (text := cell.strip())})


def _variants(group: _Handle) -> Iterator[FeedItem]:
    product = group.rows[0]  # the first row carries the product's text, option names and first variant
    images = _handle_images(group.rows)
    variants = [row for row in group.rows if any(row.get(column) for column in _VARIANT_COLUMNS)]
    option_names = {n: product.get(f"Option{n} Name") for n in OPTIONS}
    seen: set[str] = set()
    for row in variants or [product]:
        options = {name: row.get(f"Option{n} Value") for n, name in option_names.items()
                   if name and row.get(f"Option{n} Value") and row.get(f"Option{n} Value") != _DEFAULT_OPTION}
        product_id = row.get("Variant SKU") or _variant_id(group.handle, list(options.values()))
        if product_id in seen and not row.get("Variant SKU"):
            yield problem_item(row.line, product_id, FieldError(
                "Variant SKU", "two variants of the handle have the same options and no SKU"))
            continue
        seen.add(product_id)
        try:
            draft = _variant_draft(group.handle, product, row, product_id, options, group.tracker_column)
        except FieldError as error:
            yield problem_item(row.line, product_id, error)
            continue
        own = row.get("Variant Image")
        if own:
            yield draft.item(row.line, [own, *(url for url in images if url != own)], "Variant Image")
        else:
            yield draft.item(row.line, images, "Image Src")


def _variant_draft(handle: str, product: _Row, row: _Row, product_id: str, options: dict[str, str],
                   tracker_column: bool) -> ProductDraft:
    draft = ProductDraft()
    draft.set("id", product_id, "Variant SKU")
    draft.set("title", product.get("Title"), "Title")
    body = product.get("Body (HTML)")
    draft.set("description", plain_text(body) if body else None, "Body (HTML)")
    draft.set("brand", product.get("Vendor"), "Vendor")
    price_text, compare_text = row.get("Variant Price"), row.get("Variant Compare At Price")
    price = parse_amount("Variant Price", price_text) if price_text else None
    draft.set("price", price, "Variant Price")
    if compare_text:
        regular = parse_amount("Variant Compare At Price", compare_text)
        if price is not None and regular > price:
            draft.attribute("regular_price", regular, "Variant Compare At Price")
    draft.set("in_stock", _in_stock(product, row, tracker_column), "Variant Inventory Qty")
    product_type, category = product.get("Type"), product.get("Product Category")
    if product_type:
        draft.set("category", most_specific(product_type), "Type")
    elif category:
        draft.set("category", most_specific(category), "Product Category")
    if category:
        draft.attribute("product_category", " > ".join(category_levels(category)), "Product Category")
    draft.attribute("tags", ", ".join(tag.strip() for tag in product.get("Tags").split(",") if tag.strip()), "Tags")
    draft.attribute(GROUP_ATTRIBUTE, handle, "Handle")
    draft.attribute("gtin", row.get("Variant Barcode"), "Variant Barcode")
    for name, value in options.items():
        draft.attribute(_attribute_name(name, draft.attributes), value, name)
    return draft


def _in_stock(product: _Row, row: _Row, tracker_column: bool) -> bool:
    """Sellable now: an active product whose variant has stock, is not tracked, or sells on when out of stock."""
    status = product.get("Status").lower()
    if status and status != "active":
        return False
    quantity = row.get("Variant Inventory Qty")
    if not quantity or not row.get("Variant Inventory Tracker") and tracker_column:
        return True
    if row.get("Variant Inventory Policy").lower() == "continue":
        return True
    try:
        return int(float(quantity)) > 0
    except ValueError:
        raise FieldError("Variant Inventory Qty", f"{quantity!r} is not a number") from None


def _handle_images(rows: list[_Row]) -> list[str]:
    """The handle's images by Image Position (rows without one keep their place after those with one)."""
    positioned = []
    for order, row in enumerate(rows):
        src = row.get("Image Src")
        if not src:
            continue
        position = row.get("Image Position")
        positioned.append((int(position) if position.isdigit() else 10**9, order, src))
    return list(dict.fromkeys(src for _position, _order, src in sorted(positioned)))


def _variant_id(handle: str, option_values: list[str]) -> str:
    """A variant without a SKU: the handle and its option values (`classic-tee-red-m`); the handle alone for a
    product without variants."""
    parts = [handle, *(_NOT_ID.sub("-", value.lower()).strip("-") for value in option_values)]
    return "-".join(part for part in parts if part)


def _attribute_name(option: str, taken: dict[str, Any]) -> str:
    """The merchant's own option name (`Größe`, `サイズ`: any name filters exactly), lower-cased, without the dots an
    attribute name cannot hold; a name already used by this product gets a number rather than overwriting it."""
    base = option.strip().lower().replace(".", "_")[:MAX_ATTRIBUTE_KEY - 3] or "option"
    name, number = base, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    return name
