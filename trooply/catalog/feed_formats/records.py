"""What every feed format maps to: a product as POST /v1/products takes it, its images in order, or why the item
cannot be one, named by the feed's own field; and the small readers of feed values (prices, category paths, HTML)."""

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from pydantic import ValidationError

from trooply.catalog.csv_lines import INVALID_CSV
from trooply.catalog.schemas import MAX_IMAGES, ProductIn
from trooply.vision.fetch import image_url_problem

MAX_DESCRIPTION = 10_000  # ProductIn's limit: a longer description is cut at a word, not refused
MAX_ATTRIBUTE_TEXT = 500
# "15.00 USD", "USD 15.00", "1,299.99 EUR": an amount and an ISO 4217 code, either order.
_PRICE = re.compile(r"^(?:([A-Za-z]{3})\s*)?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*(?:([A-Za-z]{3}))?$")
_SPACES = re.compile(r"\s+")


@dataclass
class FeedProblem:
    product_id: str | None
    code: str
    message: str
    field: str | None = None


@dataclass
class FeedItem:
    """One product of a feed. `line` is the row's line in a CSV or TSV file, the item's number (1-based) in XML."""

    line: int
    product: ProductIn | None = None
    images: list[str] = field(default_factory=list)  # the main image first, then the others in the feed's order
    problem: FeedProblem | None = None


class FieldError(ValueError):
    """A feed value that cannot be mapped, named by the feed's field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass
class ProductDraft:
    """A product being mapped: the fields of ProductIn, and which feed field each came from (to name it in an
    error)."""

    values: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, value: Any, source: str) -> None:
        if value is None or value == "":
            return
        self.values[name] = value
        self.sources[name] = source

    def attribute(self, name: str, value: Any, source: str) -> None:
        if value is None or value == "":
            return
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_TEXT:
            value = value[:MAX_ATTRIBUTE_TEXT].rstrip()
        self.attributes[name] = value
        self.sources[f"attributes.{name}"] = source

    def item(self, line: int, images: list[str], image_field: str) -> FeedItem:
        """Validated as POST /v1/products validates; the main image is the first of `images`, from `image_field`."""
        self.sources["image_url"] = image_field
        record = dict(self.values)
        main = images[0] if images else None
        if main is not None:
            record["image_url"] = main
        if self.attributes:
            record["attributes"] = self.attributes
        product_id = record.get("id") if isinstance(record.get("id"), str) else None
        try:
            product = ProductIn.model_validate(record)
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            source = self.sources.get(where) or self.sources.get(where.split(".")[0]) or where or None
            more = f" (and {len(error.errors()) - 1} more)" if len(error.errors()) > 1 else ""
            message = problem["msg"] if where != "image_url" or main else "the item has no image"
            return FeedItem(line, problem=FeedProblem(product_id, "validation_error",
                                                      f"{source}: {message}{more}", source))
        # The main image was checked as image_url; an extra one that could never be fetched is left out.
        extras = [url for url in dict.fromkeys(images[1:]) if url != main and image_url_problem(url) is None]
        every = [product.image_url, *extras][:MAX_IMAGES]
        product.images = every if len(every) > 1 else None  # the plan's cap keeps the first ones (see `submit`)
        return FeedItem(line, product=product, images=every)


def problem_item(line: int, product_id: str | None, error: FieldError) -> FeedItem:
    return FeedItem(line, problem=FeedProblem(product_id, "validation_error", str(error), error.field))


def csv_problem_item(line: int, message: str) -> FeedItem:
    """A record the strict CSV reader could not read (trooply/catalog/csv_lines.py)."""
    return FeedItem(line, problem=FeedProblem(None, INVALID_CSV, message))


def parse_price(field_name: str, text: str) -> tuple[float, str | None]:
    """An amount and its currency (upper case), or FieldError."""
    match = _PRICE.match(text.strip())
    if match is None or (match.group(1) and match.group(3)):
        raise FieldError(field_name, f"{text!r} is not a price such as '15.00 USD'")
    amount = float(match.group(2).replace(",", ""))
    if not math.isfinite(amount):
        raise FieldError(field_name, f"{text!r} is not a finite amount")
    currency = match.group(1) or match.group(3)
    return amount, currency.upper() if currency else None


def parse_amount(field_name: str, text: str) -> float:
    amount, _currency = parse_price(field_name, text)
    return amount


def sale_applies(period: str | None, now: datetime | None = None) -> bool:
    """Whether a sale_price_effective_date ("2024-11-01T00:00-0800/2024-11-30T23:59-0800") covers now; a sale
    without a period (or with one that cannot be read) always applies."""
    if not period or "/" not in period:
        return True
    start_text, _, end_text = period.partition("/")
    try:
        start, end = _instant(start_text), _instant(end_text)
    except ValueError:
        return True
    moment = now or datetime.now(UTC)
    return start <= moment <= end


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def category_levels(path: str) -> list[str]:
    """`A > B > C` as its levels, most general first."""
    return [level.strip() for level in path.split(">") if level.strip()]


def most_specific(path: str) -> str | None:
    levels = category_levels(path)
    return levels[-1] if levels else None


def plain_text(html: str, limit: int = MAX_DESCRIPTION) -> str:
    """HTML as the words a shopper reads: tags dropped (blocks become line breaks), entities decoded, scripts and
    styles left out, spaces collapsed; cut at a word when longer than `limit`."""
    if "<" not in html and "&" not in html:  # already plain: only the spaces to tidy
        return _cut(_tidy(html), limit)
    reader = _TextOf()
    reader.feed(html)
    reader.close()
    return _cut(_tidy("".join(reader.parts)), limit)


def _tidy(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _cut(text: str, limit: int) -> str:
    return text[:limit].rsplit(" ", 1)[0] if len(text) > limit else text


class _TextOf(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
                         "section", "article", "blockquote", "pre", "hr"})
    _HIDDEN = frozenset({"script", "style", "template", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)
