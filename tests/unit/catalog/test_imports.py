"""Reading an import file: CSV and JSONL rows become the products POST /v1/products would accept, and every other
row is rejected with its line; batches go out in order and the service's own refusals join the rejections."""

import pytest

from trooply.catalog.imports import format_of, job_totals, read_rows, submit_rows
from trooply.errors import InvalidRequest, QuotaExceeded

URL = "https://cdn.example.com/a.jpg"


def rows(text: str, fmt: str) -> list:
    return list(read_rows(text, fmt))


def test_csv_columns_are_typed_like_a_json_body() -> None:
    [row] = rows("id,image_url,title,price,in_stock,popularity,attributes.colour,attributes.size,attributes.code,"
                 "attributes.sale\n"
                 f"sku-1,{URL},Red sneaker,89.5,yes,2,red,42,007,true\n", "csv")
    product = row.product
    assert (row.line, product.id, product.title, product.price, product.in_stock, product.popularity) == \
        (2, "sku-1", "Red sneaker", 89.5, True, 2.0)
    # Cells that read unambiguously as a number or a boolean are typed; "007" stays text.
    assert product.attributes == {"colour": "red", "size": 42, "code": "007", "sale": True}


def test_empty_cells_are_left_out_and_blank_lines_skipped() -> None:
    [row] = rows(f"id,image_url,title,price,attributes.colour\n\nsku-1,{URL},,,\n", "csv")
    assert row.line == 3 and row.product.metadata() == {"image_url": URL}


def test_bad_csv_rows_are_rejected_with_their_line_and_field() -> None:
    text = ("id,image_url,price,in_stock\n"
            f"ok-1,{URL},1,true\n"
            f"bad-price,{URL},cheap,true\n"
            f"bad-stock,{URL},1,maybe\n"
            f"bad-url,ftp://example.com/a.jpg,1,true\n"
            f",{URL},1,true\n"
            f"ok-1,{URL},2,false\n"
            f"too-many,{URL},1,true,extra\n"
            f'"multi\nline",{URL},1,true\n')
    got = {row.line: row.rejected for row in rows(text, "csv") if row.rejected}
    assert (got[3].product_id, got[3].field, got[3].code) == ("bad-price", "price", "validation_error")
    assert "'cheap' is not a number" in got[3].message
    assert got[4].field == "in_stock" and "maybe" in got[4].message
    assert got[5].field == "image_url"
    assert got[6].field == "id"
    assert (got[7].code, got[7].message) == ("duplicate_id", "the id is already on line 2")
    assert got[8].code == "invalid_csv"
    # A quoted cell spanning two lines: the row is named by the line it starts on.
    assert got[9].product_id == "multi\nline" and got[9].field == "id"
    assert sorted(got) == [3, 4, 5, 6, 7, 8, 9]


@pytest.mark.parametrize("header, message", [
    ("id,image_url,colour", "unknown CSV column 'colour' (custom fields are columns named attributes.NAME)"),
    ("id,title", "the CSV header has no 'image_url' column"),
    ("id,image_url,id", "the CSV header repeats the column 'id'"),
    ("id,image_url,attributes.", "unknown CSV column 'attributes.'"),
])
def test_a_bad_header_fails_the_whole_file(header: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        rows(f"{header}\nsku-1,{URL},x\n", "csv")
    assert raised.value.code == "invalid_import_file" and message in raised.value.message


def test_jsonl_rows_keep_their_types_and_bad_lines_are_named() -> None:
    text = "\n".join([
        f'{{"id": "sku-1", "image_url": "{URL}", "price": 12, "attributes": {{"size": 42}}}}',
        "",
        '{"id": "sku-2", "image_url": "' + URL + '", "price": "12"}',
        "not json",
        "[1, 2]",
        '{"id": "sku-3", "image_url": "' + URL + '", "price": NaN}',
        '{"id": "sku-4", "image_url": "' + URL + '", "title": "\\udfff"}',
        '{"id": "sku-5", "image_url": "' + URL + '", "colour": "red"}',
        '{"id": "sku-6", "image_url": "' + URL + '", "attributes": {"size": 1e400}}',
        '{"id": "sku-7", "image_url": "' + URL + '", "attributes": {"size": ' + "9" * 30 + '}}',
    ])
    result = rows(text, "jsonl")
    assert result[0].line == 1 and result[0].product.attributes == {"size": 42}
    rejected = {row.line: row.rejected for row in result if row.rejected}
    assert rejected[3].field == "price" and rejected[3].product_id == "sku-2"  # strict: "12" is not a number
    assert rejected[4].code == "invalid_json" and rejected[4].message.startswith("not valid JSON at column 1: ")
    assert rejected[5].message == "a line must be a JSON object"
    # The same strict JSON rules as a request body, naming the field.
    assert (rejected[6].code, rejected[6].field) == ("invalid_number", "price")  # NaN
    assert rejected[7].code == "invalid_text" and "surrogate" in rejected[7].message
    assert rejected[8].field == "colour"  # an unknown field, as POST /v1/products says
    assert (rejected[9].code, rejected[9].field) == ("invalid_number", "attributes.size")  # 1e400
    assert (rejected[10].code, rejected[10].field) == ("invalid_number", "attributes.size")  # beyond 2^53
    assert sorted(rejected) == [3, 4, 5, 6, 7, 8, 9, 10]


def test_the_format_comes_from_the_name_or_is_named() -> None:
    # A .csv is read from its header: ours, or a Shopify export (tests/unit/catalog/test_feed_formats.py).
    assert format_of("products.CSV") == "auto" and format_of("p.ndjson") == "jsonl"
    assert format_of("x", "jsonl") == "jsonl"
    for name, declared in (("products.xlsx", None), (None, None), ("p.csv", "xml")):
        with pytest.raises(InvalidRequest) as raised:
            format_of(name, declared)
        assert raised.value.code == "unsupported_import_format"


def test_batches_go_out_in_order_and_refusals_join_the_rejected_rows() -> None:
    lines = [f"p{i},{URL}" for i in range(7)]
    text = "id,image_url\n" + "\n".join(lines[:3]) + "\nbad,nope\n" + "\n".join(lines[3:]) + "\n"
    sent: list[list[str]] = []

    def send(products):
        sent.append([p.id for p in products])
        if len(sent) == 3:
            raise QuotaExceeded("the plan holds at most 6 products")
        outcomes = [("unchanged" if p.id == "p0" else "pending", None, None, None) for p in products]
        return f"job-{len(sent)}", outcomes

    batches: list[int] = []
    report = submit_rows(read_rows(text, "csv"), send, on_batch=lambda r: batches.append(r.accepted), batch_size=3)
    assert sent == [["p0", "p1", "p2"], ["p3", "p4", "p5"], ["p6"]]
    assert (report.rows, report.accepted, report.unchanged, report.jobs) == (8, 5, 1, ["job-1", "job-2"])
    assert batches == [2, 5, 5]
    assert [(r.line, r.code) for r in report.rejected] == [(5, "validation_error"), (9, "quota_exceeded")]


def test_job_totals_add_up_counts_and_failure_codes() -> None:
    jobs = [{"status": "completed", "counts": {"pending": 0, "indexed": 3, "failed": 1},
             "errors": [{"product_id": "a", "code": "image_not_found", "message": ""}]},
            {"status": "running", "counts": {"pending": 2, "indexed": 1, "failed": 2},
             "errors": [{"product_id": "b", "code": "image_not_found", "message": ""},
                        {"product_id": "c", "code": None, "message": None}]}]
    assert job_totals(jobs) == {"counts": {"pending": 2, "indexed": 4, "failed": 3}, "status": "running",
                                "failed_by_code": {"image_not_found": 2, "unknown": 1}}


def test_a_malformed_jsonl_line_names_its_column() -> None:
    rejected = rows('{"id": "a", "image_url": "' + URL + '" "title": "x"}\n', "jsonl")[0].rejected
    column = len('{"id": "a", "image_url": "' + URL + '" ') + 1
    assert rejected is not None and (rejected.line, rejected.code) == (1, "invalid_json")
    assert rejected.message == f"not valid JSON at column {column}: Expecting ',' delimiter"
