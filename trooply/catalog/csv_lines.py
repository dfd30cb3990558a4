"""Strict CSV/TSV reading shared by every delimited reader (our CSV import, the Shopify export, the Merchant
Center TSV): a quote left open or a stray one is an error on its own record, never a guess, and the lines a broken
record swallowed are read again one at a time, so no later row is lost. A header wider than any catalogue, or one
whose names hold a NUL, is refused whole."""

import csv
from collections.abc import Iterable, Iterator

from trooply.errors import InvalidRequest

# The product fields and 50 attributes fit many times over (Shopify's export has ~50 columns, Merchant Center
# fewer); a wider header is not a catalogue.
MAX_CSV_COLUMNS = 1000
INVALID_CSV = "invalid_csv"

# A record: (its first line, its cells) or (its line, why it cannot be read).
Record = tuple[int, list[str] | str]


class LineTape:
    """The file's lines as the CSV reader pulls them, numbered, keeping those of the record being read: a record
    the reader gives up on is read again a line at a time (a quote never closed swallows no rows)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.read = 0
        self.record: list[str] = []

    def __iter__(self) -> "LineTape":
        return self

    def __next__(self) -> str:
        text = next(self._lines)
        self.read += 1
        self.record.append(text)
        return text

    def begin_record(self) -> int:
        """The line the next record starts on."""
        self.record = []
        return self.read + 1


class StrictCsv:
    """A delimited file read strictly: `header()` first, then `records()`."""

    def __init__(self, lines: Iterable[str], delimiter: str = ",", kind: str = "CSV") -> None:
        self._delimiter, self._kind = delimiter, kind
        self._tape = LineTape(lines)
        self._reader = csv.reader(self._tape, delimiter=delimiter, strict=True)

    def header(self) -> list[str] | None:
        """The header's names, stripped; None for an empty file. Unreadable, too wide or holding a NUL: the whole
        file is refused (InvalidRequest `invalid_import_file`)."""
        try:
            names = [name.strip() for name in next(self._reader)]
        except StopIteration:
            return None
        except csv.Error as error:
            raise InvalidRequest(f"the {self._kind} header cannot be read: {error}",
                                 code="invalid_import_file") from None
        if len(names) > MAX_CSV_COLUMNS:
            raise InvalidRequest(f"the {self._kind} header has {len(names)} columns; at most {MAX_CSV_COLUMNS}",
                                 code="invalid_import_file")
        for name in names:
            if "\x00" in name:
                raise InvalidRequest(f"the {self._kind} column {name!r} holds a NUL character",
                                     code="invalid_import_file")
        return names

    def records(self) -> Iterator[Record]:
        """Every record after the header that holds something, with its first line; a broken one as its problem,
        then the lines it swallowed, each read alone."""
        while True:
            line = self._tape.begin_record()
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield line, csv_problem(error, line)
                for offset, text in enumerate(self._tape.record[1:], start=line + 1):
                    yield from self._line_alone(offset, text)
                continue
            if any(cell.strip() for cell in cells):
                yield line, cells

    def _line_alone(self, line: int, text: str) -> Iterator[Record]:
        try:
            cells = next(csv.reader([text], delimiter=self._delimiter, strict=True), [])
        except csv.Error as error:
            yield line, csv_problem(error, line)
            return
        if any(cell.strip() for cell in cells):
            yield line, cells


def csv_problem(error: csv.Error, line: int) -> str:
    if str(error) == "unexpected end of data":
        return f"a quote opened on line {line} is never closed; the lines after it are read one by one"
    return str(error)
