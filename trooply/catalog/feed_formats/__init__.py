"""The catalogue feeds merchants already publish, read as products: Google Merchant Center (XML or TSV) and
Shopify's product CSV export, each streamed, with `auto` telling them (and our own CSV and JSONL) apart.

`trooply import`, POST /v1/imports (through trooply/catalog/imports.py) and feed syncs (trooply/feeds/) read
them through `feed_items`."""

import io
import itertools
from collections.abc import Iterable, Iterator

from trooply.catalog.feed_formats.google import tsv_items, xml_items
from trooply.catalog.feed_formats.records import FeedItem, FeedProblem
from trooply.catalog.feed_formats.shopify import is_shopify_header, shopify_items
from trooply.errors import InvalidRequest

GOOGLE_XML, GOOGLE_TSV, SHOPIFY_CSV, AUTO = "google_xml", "google_tsv", "shopify_csv", "auto"
FEED_FORMATS = (GOOGLE_XML, GOOGLE_TSV, SHOPIFY_CSV)
SNIFF_CHARS = 64 * 1024

__all__ = ["AUTO", "FEED_FORMATS", "FeedItem", "FeedProblem", "GOOGLE_TSV", "GOOGLE_XML", "SHOPIFY_CSV",
           "detect_format", "feed_items", "sniff_lines", "xml_items"]


def detect_format(head: str) -> str:
    """The format of a file from its first characters: google_xml, google_tsv, shopify_csv, jsonl or csv."""
    text = head.lstrip("\ufeff \t\r\n")
    if text.startswith("<"):
        return GOOGLE_XML
    if text.startswith("{"):
        return "jsonl"
    header = text.split("\n", 1)[0].rstrip("\r")
    if "\t" in header:
        names = {name.strip().strip('"').lower().removeprefix("g:") for name in header.split("\t")}
        if "id" in names and ("image_link" in names or "title" in names):
            return GOOGLE_TSV
    if is_shopify_header([name.strip().strip('"') for name in header.split(",")]):
        return SHOPIFY_CSV
    return "csv"


def sniff_lines(lines: Iterable[str]) -> tuple[Iterator[str], str]:
    """The format of a file given as lines (detected from its first non-blank one), and the lines again, whole."""
    iterator = iter(lines)
    head: list[str] = []
    for line in iterator:
        head.append(line)
        if line.strip():
            break
    return itertools.chain(head, iterator), detect_format("".join(head)[:SNIFF_CHARS])


def feed_items(source: Iterable[str], fmt: str) -> Iterator[FeedItem]:
    """Every item of a feed in order. `source` is the text as lines, or a text file (XML is read in chunks from
    its `read`, so a feed on one line never lands in memory whole; `xml_items` also reads a binary file, which
    lets the XML declare its encoding)."""
    if fmt == GOOGLE_XML:
        return xml_items(source if isinstance(source, io.TextIOBase) else _LineReader(source))
    if fmt == GOOGLE_TSV:
        return tsv_items(source)
    if fmt == SHOPIFY_CSV:
        return shopify_items(source)
    raise InvalidRequest(f"format must be one of {', '.join(FEED_FORMATS)}", code="unsupported_import_format")


class _LineReader(io.TextIOBase):
    """Lines as a text file the XML parser can read from."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self._rest = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> str:
        wanted = size if size is not None and size > 0 else None
        parts = [self._rest]
        held = len(self._rest)
        while wanted is None or held < wanted:
            line = next(self._lines, None)
            if line is None:
                break
            parts.append(line)
            held += len(line)
        text = "".join(parts)
        if wanted is None:
            self._rest = ""
            return text
        self._rest = text[wanted:]
        return text[:wanted]

