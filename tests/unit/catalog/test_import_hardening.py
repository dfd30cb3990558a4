"""Import files that used to lose rows or cost without bound: a quote never closed swallows no row, NUL is refused
as in a JSON body, a JSONL line costs in proportion to a product, and a wide CSV header is checked in linear time."""

import tracemalloc

import pytest

from trooply.catalog.csv_lines import MAX_CSV_COLUMNS
from trooply.catalog.imports import MAX_JSONL_LINE_CHARS, read_rows, submit_rows
from trooply.errors import InvalidRequest

URL = "https://cdn.example.com/a.jpg"


def outcome(text: str, fmt: str) -> tuple[dict[int, str], dict[int, tuple[str, str]]]:
    """(line: product id) of the products read, (line: (code, message)) of the rows refused."""
    products, refused = {}, {}
    for row in read_rows(text, fmt):
        if row.product is not None:
            products[row.line] = row.product.id
        else:
            refused[row.line] = (row.rejected.code, row.rejected.message)
    return products, refused


def test_a_quote_never_closed_swallows_no_row() -> None:
    text = f'id,image_url,title\nsku-1,{URL},"Red sneaker\nsku-2,{URL},Blue bag\nsku-3,{URL},Green hat\n'
    products, refused = outcome(text, "csv")
    assert refused == {2: ("invalid_csv", "a quote opened on line 2 is never closed; the lines after it are read "
                                          "one by one")}
    assert products == {3: "sku-2", 4: "sku-3"}


def test_a_stray_quote_inside_a_multiline_cell_rejects_its_record_and_keeps_the_rows_it_took() -> None:
    text = (f'id,image_url,title\nsku-1,{URL},"open\nsku-2,{URL},fine\nsku-3,{URL},"x"y\n'
            f'sku-4,{URL},"a quoted\ncell on two lines"\nsku-5,{URL},last\n')
    products, refused = outcome(text, "csv")
    assert set(refused) == {2, 4} and all(code == "invalid_csv" for code, _ in refused.values())
    assert products == {3: "sku-2", 5: "sku-4", 7: "sku-5"}


def test_the_report_counts_every_row_once() -> None:
    text = f'id,image_url,title\nsku-1,{URL},"never closed\nsku-2,{URL},b\nsku-3,{URL},c\n'
    report = submit_rows(read_rows(text, "csv"), lambda batch: ("job", [("pending", None, None, None) for _ in batch]))
    assert (report.rows, report.accepted, len(report.rejected)) == (3, 2, 1)


def test_nul_is_refused_in_csv_cells_and_column_names() -> None:
    products, refused = outcome(f"id,image_url,title\nsku-1,{URL},Red\x00sneaker\nsku-2,{URL},fine\n", "csv")
    assert products == {3: "sku-2"} and refused[2][0] == "validation_error" and "NUL" in refused[2][1]
    with pytest.raises(InvalidRequest) as raised:
        outcome(f"id,image_url,attributes.si\x00ze\nsku-1,{URL},x\n", "csv")
    assert raised.value.code == "invalid_import_file" and "NUL" in raised.value.message


def test_a_jsonl_line_longer_than_any_product_is_refused_unparsed_and_costs_its_bytes_only() -> None:
    huge = "[" + "1," * (2 * MAX_JSONL_LINE_CHARS) + "1]"
    text = f'{{"id": "sku-1", "image_url": "{URL}"}}\n{huge}\n{{"id": "sku-2", "image_url": "{URL}"}}\n'
    tracemalloc.start()
    try:
        products, refused = outcome(text, "jsonl")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert products == {1: "sku-1", 3: "sku-2"} and refused[2][0] == "line_too_long"
    assert peak < 2 * len(huge) + 4 * 1024 * 1024, "the line is held as text once, never parsed"


def test_a_wide_csv_header_is_refused_and_a_repeat_is_found_among_many_columns() -> None:
    wide = ",".join(["id", "image_url", *(f"attributes.c{i}" for i in range(100_000))])
    with pytest.raises(InvalidRequest) as raised:
        outcome(f"{wide}\n", "csv")
    assert raised.value.code == "invalid_import_file" and f"at most {MAX_CSV_COLUMNS}" in raised.value.message
    repeated = ",".join(["id", "image_url", *(f"attributes.c{i}" for i in range(MAX_CSV_COLUMNS - 3)), "attributes.c7"])
    with pytest.raises(InvalidRequest, match="repeats the column 'attributes.c7'"):
        outcome(f"{repeated}\n", "csv")
