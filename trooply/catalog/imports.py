"""Bulk import: products from a CSV or JSONL file, validated row by row like POST /v1/products, sent in
batches of up to 1,000 through the catalog service, with every rejected row named by its line. Google Merchant
Center and Shopify feeds are read by trooply/catalog/feed_formats/ and join here as rows.

The portal's upload (POST /v1/imports) and `trooply import` share this module; the CLI can also send the
batches to a remote server, so sending a batch is a callable here.
"""

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from trooply.catalog.csv_lines import INVALID_CSV, StrictCsv
from trooply.catalog.feed_formats import AUTO, FEED_FORMATS, GOOGLE_XML, FeedItem, feed_items, sniff_lines
from trooply.catalog.schemas import MAX_BATCH, TOO_MANY_IMAGES, ProductIn
from trooply.errors import InvalidRequest, QuotaExceeded, TrooplyError
from trooply.strict_json import parse_json

if TYPE_CHECKING:
    from trooply.catalog.service import CatalogService

FORMATS = ("csv", "jsonl", *FEED_FORMATS, AUTO)
# A name's suffix: its format, or `auto` (read from the file's start: our CSV, a Shopify export, a Merchant Center TSV).
_SUFFIXES = {"jsonl": "jsonl", "ndjson": "jsonl", "csv": AUTO, "tsv": AUTO, "txt": AUTO, "xml": GOOGLE_XML}
ATTRIBUTE_PREFIX = "attributes."
_NUMBER_COLUMNS = ("price", "popularity")
_TRUE, _FALSE = ("true", "yes", "y", "1"), ("false", "no", "n", "0")
# A CSV cell of an attribute is typed when it reads unambiguously as one: 42, -3.5, true. "007" stays text.
_PLAIN_NUMBER = re.compile(r"^-?(0|[1-9]\d{0,14})(\.\d+)?$")
# The longest product as JSON is some 250 KB (every text at its cap, escaped); a longer line is refused unparsed,
# so what a line costs once parsed stays in proportion to a product, whatever the line holds.
MAX_JSONL_LINE_CHARS = 1024 * 1024
# Characters searched (or decoded) per step. The GIL is held for one step at a time, so the event loop answers
# other tenants while a 40 MB line is split: one regex match over it held the GIL for a third of a second.
_STEP = 256 * 1024


@dataclass
class RejectedRow:
    line: int
    product_id: str | None
    code: str
    message: str
    field: str | None = None


@dataclass
class ImportRow:
    """One record of the file: a valid product, or why it is not one."""

    line: int
    product: ProductIn | None = None
    rejected: RejectedRow | None = None


@dataclass
class ImportReport:
    rows: int = 0
    accepted: int = 0
    unchanged: int = 0
    jobs: list[str] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)


# What sending one batch answers: (job id or None, [(status, error code, error message, field)] in the order the
# products were sent).
BatchOutcome = tuple[str | None, list[tuple[str, str | None, str | None, str | None]]]


def format_of(name: str | None, declared: str | None = None) -> str:
    if declared:
        if declared not in FORMATS:
            raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}", code="unsupported_import_format")
        return declared
    suffix = (name or "").lower().rsplit(".", 1)[-1]
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    raise InvalidRequest("import a .csv, .jsonl, .tsv or .xml file (or name its format)",
                         code="unsupported_import_format")


def decode_text(data: bytes) -> str:
    """The file as text, decoded a step at a time (see _STEP), each step ending on a character's first byte."""
    pieces: list[str] = []
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0  # utf-8-sig: dropped, and bytes counted after it
    start, size = bom, len(data)
    while start < size:
        end = _character_start(data, start, min(start + _STEP, size))
        try:
            pieces.append(data[start:end].decode("utf-8"))
        except UnicodeDecodeError as error:
            raise InvalidRequest(f"the file is not UTF-8 text (byte {start - bom + error.start})",
                                 code="invalid_import_file") from None
        start = end
    return "".join(pieces)


def _character_start(data: bytes, start: int, end: int) -> int:
    """`end`, or the first byte of the character it falls in (a continuation byte is 10xxxxxx; at most 3 follow a
    character's first byte), so that no step cuts a character. A longer run is invalid anyway: cut anywhere."""
    for back in range(5):
        cut = end - back
        if cut <= start:
            break
        if cut == len(data) or data[cut] & 0xC0 != 0x80:
            return cut
    return end


def read_rows(text: str | Iterable[str], fmt: str) -> Iterator[ImportRow]:
    """Every record of the file in order, each a product or a rejection; a duplicate id is rejected at its
    second line. A CSV header that names an unknown column fails the whole file (InvalidRequest)."""
    lines: Iterable[str] = _lines_of(text) if isinstance(text, str) else text
    if fmt == AUTO:
        lines, fmt = sniff_lines(lines)
    records = (_feed_records(lines, fmt) if fmt in FEED_FORMATS else
               _csv_records(lines) if fmt == "csv" else _jsonl_records(lines))
    first_line: dict[str, int] = {}
    for line, record in records:
        row = record if isinstance(record, ImportRow) else _validated(line, record)
        if (product := row.product) is not None:
            if (earlier := first_line.get(product.id)) is not None:
                row = ImportRow(line, rejected=RejectedRow(line, product.id, "duplicate_id",
                                                           f"the id is already on line {earlier}", "id"))
            else:
                first_line[product.id] = line
        yield row


def _lines_of(text: str) -> Iterator[str]:
    """The text's lines with their endings (\\n, \\r\\n or \\r), one at a time: a file is held as its text once,
    not copied whole into a line buffer (io.StringIO keeps four bytes a character)."""
    newline, carriage = _NextChar(text, "\n"), _NextChar(text, "\r")
    start, size = 0, len(text)
    while start < size:
        end = min(newline.after(start), carriage.after(start))
        end = size if end >= size else end + 2 if text.startswith("\r\n", end) else end + 1
        yield text[start:end]
        start = end


class _NextChar:
    """Where the next `char` of a text is, searched a step at a time; remembered, so that every part of the text
    is searched once per character however many lines it holds (the text's length: there is none)."""

    def __init__(self, text: str, char: str) -> None:
        self.text, self.char = text, char
        self._from, self._at = 0, -1  # the first `char` at or after _from is at _at (-1: not searched yet)

    def after(self, start: int) -> int:
        if self._from <= start <= self._at:
            return self._at
        found, window, size = -1, start, len(self.text)
        while found < 0 and window < size:
            found = self.text.find(self.char, window, window + _STEP)
            window += _STEP
        self._from, self._at = start, found if found >= 0 else size
        return self._at


def submit_rows(rows: Iterable[ImportRow], send: Callable[[list[ProductIn]], BatchOutcome],
                on_batch: Callable[[ImportReport], None] | None = None, batch_size: int = MAX_BATCH) -> ImportReport:
    """Sends the valid rows in batches; products the service refuses (the plan's cap) join the rejected rows."""
    report = ImportReport()
    batch: list[tuple[int, ProductIn]] = []

    def flush() -> None:
        try:
            job_id, outcomes = send([product for _, product in batch])
        except QuotaExceeded as error:
            job_id, outcomes = None, [("rejected", error.code, error.message, None) for _ in batch]
        except TrooplyError as error:  # every product of the batch over its image cap: each says so
            if error.code != TOO_MANY_IMAGES or not isinstance(error.details, list):
                raise
            job_id, outcomes = None, [outcome("rejected", admission.get("error")) for admission in error.details]
        for (line, product), (status, code, message, field_name) in zip(batch, outcomes, strict=True):
            if status == "pending":
                report.accepted += 1
            elif status == "unchanged":
                report.unchanged += 1
            else:
                report.rejected.append(RejectedRow(line, product.id, code or "rejected", message or "", field_name))
        if job_id is not None:
            report.jobs.append(job_id)
        batch.clear()
        if on_batch is not None:
            on_batch(report)

    for row in rows:
        report.rows += 1
        if row.rejected is not None:
            report.rejected.append(row.rejected)
        elif row.product is not None:
            batch.append((row.line, row.product))
            if len(batch) == batch_size:
                flush()
    if batch:
        flush()
    report.rejected.sort(key=lambda rejected: rejected.line)
    return report


def catalog_sender(catalog: "CatalogService", tenant_id: str, skip_unchanged: bool = True,
                   fmt: str | None = None) -> Callable[[list[ProductIn]], BatchOutcome]:
    """Sends a batch through this process's catalog service (the API's upload, `trooply import` locally). A feed's
    items (`fmt` a feed format) keep the first images their plan allows; a file of ours is refused beyond it."""
    def send(products: list[ProductIn]) -> BatchOutcome:
        submission = catalog.submit(tenant_id, products, skip_unchanged=skip_unchanged,
                                    trim_images=fmt in FEED_FORMATS)
        return submission.job_id, [outcome(p.status, p.error) for p in submission.products]
    return send


def outcome(status: str, error: dict[str, Any] | None) -> tuple[str, str | None, str | None, str | None]:
    """One product's answer (its status and error, as the service or the API gives them) as a batch outcome."""
    error = error or {}
    return status, error.get("code"), error.get("message"), error.get("field")


def job_totals(jobs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Several jobs' counts (GET /v1/jobs/{id}) added up, with the failures by code."""
    counts: Counter[str] = Counter()
    failed_by_code: Counter[str] = Counter()
    running = False
    for job in jobs:
        counts.update(job["counts"])
        failed_by_code.update(error["code"] or "unknown" for error in job.get("errors", []))
        running = running or job["status"] != "completed"
    return {"counts": dict(counts), "failed_by_code": dict(failed_by_code),
            "status": "running" if running else "completed"}


def _validated(line: int, record: dict[str, Any]) -> ImportRow:
    try:
        return ImportRow(line, product=ProductIn.model_validate(record))
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or None
        product_id = record.get("id") if isinstance(record.get("id"), str) else None
        more = f" (and {len(error.errors()) - 1} more)" if len(error.errors()) > 1 else ""
        return ImportRow(line, rejected=RejectedRow(line, product_id, "validation_error",
                                                    f"{where or 'product'}: {problem['msg']}{more}", where))


def _feed_records(lines: Iterable[str], fmt: str) -> Iterator[tuple[int, ImportRow]]:
    """A Merchant Center or Shopify feed (trooply/catalog/feed_formats): its items mapped and validated there."""
    for item in feed_items(lines, fmt):
        yield item.line, _feed_row(item)


def _feed_row(item: FeedItem) -> ImportRow:
    if item.problem is not None:
        problem = item.problem
        return ImportRow(item.line, rejected=RejectedRow(item.line, problem.product_id, problem.code, problem.message,
                                                         problem.field))
    return ImportRow(item.line, product=item.product)


def _jsonl_records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | ImportRow]]:
    for line, text in enumerate(lines, start=1):
        if len(text) > MAX_JSONL_LINE_CHARS:
            yield line, ImportRow(line, rejected=RejectedRow(
                line, None, "line_too_long", f"a line holds one product: at most {MAX_JSONL_LINE_CHARS} characters"))
            continue
        if not text.strip():
            continue
        try:
            record = parse_json(text)  # the same rules as a request body
        except InvalidRequest as error:
            details = error.details if isinstance(error.details, dict) else {}
            # The line's own column: the file's line number is the row's.
            message = (f"not valid JSON at column {details['column']}: {details['reason']}" if "column" in details
                       else error.message)
            yield line, ImportRow(line, rejected=RejectedRow(line, None, error.code, message, details.get("field")))
            continue
        if not isinstance(record, dict):
            yield line, ImportRow(line, rejected=RejectedRow(line, None, "invalid_json",
                                                             "a line must be a JSON object"))
            continue
        yield line, record


class _CellError(ValueError):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(f"{column}: {message}")
        self.column, self.message = column, message


def _csv_records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | ImportRow]]:
    reader = StrictCsv(lines)
    header = reader.header()
    if header is None:
        return
    _check_header(header)
    for line, record in reader.records():
        if isinstance(record, str):
            yield line, ImportRow(line, rejected=RejectedRow(line, None, INVALID_CSV, record))
        else:
            yield from _csv_record(line, record, header)


def _csv_record(line: int, cells: list[str], header: list[str]) -> Iterator[tuple[int, dict[str, Any] | ImportRow]]:
    if len(cells) > len(header):
        yield line, ImportRow(line, rejected=RejectedRow(
            line, None, INVALID_CSV, f"{len(cells)} cells for {len(header)} columns"))
        return
    try:
        yield line, _csv_product(dict(zip(header, cells, strict=False)))  # a short row leaves its last columns out
    except _CellError as error:
        product_id = (cells[header.index("id")].strip() or None) if "id" in header[:len(cells)] else None
        yield line, ImportRow(line, rejected=RejectedRow(line, product_id, "validation_error",
                                                         f"{error.column}: {error.message}", error.column))


def _check_header(header: list[str]) -> None:
    """Our own columns (the width and NUL checks are StrictCsv's)."""
    known = set(ProductIn.model_fields) - {"attributes"}
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InvalidRequest(f"the CSV header repeats the column {name!r}", code="invalid_import_file")
        seen.add(name)
        attribute = name.removeprefix(ATTRIBUTE_PREFIX) if name.startswith(ATTRIBUTE_PREFIX) else None
        if name not in known and not attribute:
            hint = " (custom fields are columns named attributes.NAME)" if name else ""
            raise InvalidRequest(f"unknown CSV column {name!r}{hint}; columns: {', '.join(sorted(known))}, "
                                 "attributes.NAME", code="invalid_import_file")
    if "id" not in seen:
        raise InvalidRequest("the CSV header has no 'id' column", code="invalid_import_file")
    if not seen & {"image_url", "images"}:
        raise InvalidRequest("the CSV header has no 'image_url' column (nor 'images')", code="invalid_import_file")


def _csv_product(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the JSON a client would POST: empty cells left out, typed columns converted."""
    product: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for column, raw in row.items():
        cell = raw.strip()
        if not cell:
            continue
        if "\x00" in cell:  # refused in a JSON body too: PostgreSQL cannot store it
            raise _CellError(column, "holds a NUL character (\\u0000)")
        if column.startswith(ATTRIBUTE_PREFIX):
            attributes[column.removeprefix(ATTRIBUTE_PREFIX)] = _attribute_value(cell)
        elif column in _NUMBER_COLUMNS:
            product[column] = _number(column, cell)
        elif column == "in_stock":
            product[column] = _boolean(column, cell)
        elif column == "images":  # main image first, separated by "|" (a character URLs escape)
            product[column] = [url.strip() for url in cell.split("|") if url.strip()]
        else:
            product[column] = cell
    if attributes:
        product["attributes"] = attributes
    return product


def _number(column: str, cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise _CellError(column, f"{cell!r} is not a number") from None
    if not math.isfinite(value):
        raise _CellError(column, f"{cell!r} is not a finite number")
    return value


def _boolean(column: str, cell: str) -> bool:
    if cell.lower() in _TRUE:
        return True
    if cell.lower() in _FALSE:
        return False
    raise _CellError(column, f"{cell!r} is not true or false (true/false, yes/no, 1/0)")


def _attribute_value(cell: str) -> str | bool | int | float:
    if cell.lower() in ("true", "false"):
        return cell.lower() == "true"
    if _PLAIN_NUMBER.match(cell):
        return float(cell) if "." in cell else int(cell)
    return cell
