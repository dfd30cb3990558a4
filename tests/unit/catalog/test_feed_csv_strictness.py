"""The feeds' delimited readers (Shopify CSV, Merchant Center TSV) read as strictly as our own CSV import: a quote
never closed costs its own row only, a header wider than any catalogue is refused, and one Shopify handle's rows are
bounded in number and in memory."""

import io
import tracemalloc

import pytest

from trooply.catalog.csv_lines import MAX_CSV_COLUMNS
from trooply.catalog.feed_formats import feed_items
from trooply.catalog.feed_formats.shopify import MAX_HANDLE_ROWS
from trooply.catalog.imports import read_rows
from trooply.errors import InvalidRequest

CDN = "https://cdn.example.com"
SHOPIFY_HEADER = "Handle,Title,Variant SKU,Variant Price,Image Src,Image Position\n"
TSV_HEADER = "id\ttitle\timage_link\tprice\n"


def _shopify_rows(first: int, count: int) -> str:
    return "".join(f"h{n},Tee {n},SKU-{n},10.00,{CDN}/{n}.jpg,1\n" for n in range(first, first + count))


def _tsv_rows(first: int, count: int) -> str:
    return "".join(f"p{n}\tDress {n}\t{CDN}/{n}.jpg\t10 USD\n" for n in range(first, first + count))


@pytest.mark.parametrize(("header", "bad", "rows"), [
    (SHOPIFY_HEADER, f'h0,"never closed,SKU-0,10.00,{CDN}/0.jpg,1\n', _shopify_rows),
    (TSV_HEADER, f'p0\t"never closed\t{CDN}/0.jpg\t10 USD\n', _tsv_rows),
], ids=["shopify_csv", "google_tsv"])
def test_a_quote_never_closed_rejects_its_own_row_and_the_good_rows_after_it_survive(header, bad, rows) -> None:
    text = header + bad + rows(1, 5)
    for source in (text, io.StringIO(text, newline="")):  # the import (auto-detected), and a feed's file
        got = ([(row.line, row.rejected.code if row.rejected else row.product.id) for row in read_rows(source, "auto")]
               if isinstance(source, str) else
               [(item.line, item.problem.code if item.problem else item.product.id)
                for item in feed_items(source, "shopify_csv" if header == SHOPIFY_HEADER else "google_tsv")])
        ids = [f"SKU-{n}" for n in range(1, 6)] if header == SHOPIFY_HEADER else [f"p{n}" for n in range(1, 6)]
        assert got == [(2, "invalid_csv"), *zip(range(3, 8), ids, strict=True)]


def test_the_problem_of_an_unclosed_quote_names_its_line() -> None:
    text = SHOPIFY_HEADER + _shopify_rows(1, 1) + f'h9,"open,SKU-9,1,{CDN}/9.jpg,1\n' + _shopify_rows(2, 1)
    problem = next(item.problem for item in feed_items(io.StringIO(text, newline=""), "shopify_csv") if item.problem)
    assert problem.message == "a quote opened on line 3 is never closed; the lines after it are read one by one"


@pytest.mark.parametrize(("fmt", "names"), [
    ("shopify_csv", ",".join(["Handle", "Variant SKU", "Variant Price", *(f"x{n}" for n in range(5000))])),
    ("google_tsv", "\t".join(["id", "image_link", *(f"x{n}" for n in range(5000))])),
])
def test_a_5000_column_header_is_refused(fmt: str, names: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        list(feed_items(io.StringIO(names + "\n", newline=""), fmt))
    assert refused.value.code == "invalid_import_file"
    assert f"at most {MAX_CSV_COLUMNS}" in refused.value.message


def test_a_nul_in_a_feed_header_is_refused() -> None:
    with pytest.raises(InvalidRequest) as refused:
        list(feed_items(io.StringIO("id\timage_link\tco\x00lor\n", newline=""), "google_tsv"))
    assert refused.value.code == "invalid_import_file" and "NUL" in refused.value.message


def _one_handle(variants: int) -> str:
    return SHOPIFY_HEADER + "".join(f"big,Big tee,SKU-{n},10.00,{CDN}/big-{n % 250}.jpg,{n % 250 + 1}\n"
                                    for n in range(variants)) + _shopify_rows(1, 1)


def test_a_handle_beyond_its_row_cap_refuses_each_row_past_it_and_the_next_handle_is_read() -> None:
    got = list(feed_items(io.StringIO(_one_handle(MAX_HANDLE_ROWS + 3), newline=""), "shopify_csv"))
    products = [item for item in got if item.product is not None]
    refused = [item for item in got if item.problem is not None]
    assert len(products) == MAX_HANDLE_ROWS + 1 and products[-1].product.id == "SKU-1"
    assert [item.line for item in refused] == [MAX_HANDLE_ROWS + 2, MAX_HANDLE_ROWS + 3, MAX_HANDLE_ROWS + 4]
    assert refused[0].problem.field == "Handle" and f"more than {MAX_HANDLE_ROWS:,} rows" in refused[0].problem.message


def _peak_until_the_first_product(text: str) -> int:
    source = io.StringIO(text, newline="")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        next(item for item in feed_items(source, "shopify_csv") if item.product is not None)  # the handle, all held
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_one_huge_handle_costs_its_capped_rows_whatever_the_file_size() -> None:
    at_cap, huge = _peak_until_the_first_product(_one_handle(MAX_HANDLE_ROWS)), _one_handle(3 * MAX_HANDLE_ROWS)
    peak = _peak_until_the_first_product(huge)
    # The rows past the cap are refused, not held; each held row keeps only the cells the mapping reads (the
    # review measured ~25x the file when every row of one handle was held as a dict of all its columns).
    assert peak < at_cap * 1.1 + 64 * 1024, (peak, at_cap)
    assert peak < 4 * len(huge), (peak, len(huge))
