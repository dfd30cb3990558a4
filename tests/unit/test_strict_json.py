"""The strict JSON checks cost memory in proportion to the nesting, not to the size: a large body holds what the
parser made of it and little more, whatever its shape, and a bad value is still named by its path."""

import json
import tracemalloc

import pytest

from trooply.errors import InvalidRequest
from trooply.strict_json import parse_json


def peak_bytes(raw: bytes) -> int:
    """What parsing and checking `raw` allocates at most, beyond what json.loads alone keeps."""
    tracemalloc.start()
    try:
        kept = json.loads(raw)
        baseline = tracemalloc.get_traced_memory()[0]
        del kept
        tracemalloc.reset_peak()
        parse_json(raw)
        return tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("shape", [
    b"[" + b"1," * 250_000 + b"1]",                          # a flat array of numbers (the abuse of issue 20)
    b"[" + b'"a",' * 200_000 + b'"a"]',                      # of short texts
    b"[" + b"[1]," * 150_000 + b"[1]]",                      # of tiny arrays
    b'{"products": [' + b'{"id": "p", "a": {"b": 1}},' * 40_000 + b'{"id": "q"}]}',
])
def test_checking_keeps_nothing_per_element(shape: bytes) -> None:
    # The parsed value itself is allowed for (it is what the route uses); the check adds a small constant.
    assert peak_bytes(shape) < 4 * 1024 * 1024


def test_a_bad_value_deep_in_a_large_body_is_named_by_its_path() -> None:
    raw = b'{"products": [' + b'{"id": "p"},' * 10_000 + b'{"id": "q", "attributes": {"size": 1e400}}]}'
    with pytest.raises(InvalidRequest) as refused:
        parse_json(raw)
    assert refused.value.details == {"field": "products[10000].attributes.size", "index": 10_000}


@pytest.mark.parametrize("raw, field", [
    ("[1, NaN]", "[1]"), ("[NaN, 1]", "[0]"), ("[1, 1e400]", "[1]"), ("[1, " + "9" * 400 + "]", "[1]"),
    ('{"a": [1, 2, [3, -Infinity]]}', "a[2][1]"), ('{"a": ["x", "\\u0000"]}', "a[1]"), ('["\\udfff"]', "[0]"),
])
def test_each_unsafe_value_is_refused_where_it_lies(raw: str, field: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_json(raw)
    assert refused.value.details == {"field": field}


def test_the_depth_limit_counts_every_level() -> None:
    assert parse_json("[" * 32 + "1" + "]" * 32) is not None
    with pytest.raises(InvalidRequest) as refused:
        parse_json("[" * 33 + "1" + "]" * 33)
    assert refused.value.code == "json_too_deep"
