"""Allowed origins are stored as browsers send them, and anything that is not one origin is refused."""

import pytest

from trooply.errors import InvalidRequest
from trooply.tenancy.origins import MAX_ORIGINS, normalise_origin, normalise_origins


@pytest.mark.parametrize(("raw", "stored"), [
    ("https://Shop.Example", "https://shop.example"),
    ("https://shop.example/", "https://shop.example"),
    ("https://shop.example:443", "https://shop.example"),
    ("http://localhost:3000", "http://localhost:3000"),
    ("HTTP://127.0.0.1:80", "http://127.0.0.1"),
    ("http://[::1]:8080", "http://[::1]:8080"),
])
def test_an_origin_is_kept_as_a_browser_writes_it(raw: str, stored: str) -> None:
    assert normalise_origin(raw) == stored


@pytest.mark.parametrize("raw", ["*", "https://*.shop.example", "shop.example", "ftp://shop.example",
                                 "https://shop.example/path", "https://shop.example?x=1", "https://user@shop.example",
                                 "https://shop.example:99999", "null", ""])
def test_anything_but_one_exact_origin_is_refused(raw: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        normalise_origin(raw)
    assert refused.value.code == "invalid_origin"


def test_a_list_drops_duplicates_and_has_a_ceiling() -> None:
    assert normalise_origins(["https://a.example", "https://A.example/", "https://b.example"]) == [
        "https://a.example", "https://b.example"]
    with pytest.raises(InvalidRequest) as refused:
        normalise_origins([f"https://s{i}.example" for i in range(MAX_ORIGINS + 1)])
    assert refused.value.code == "too_many_origins"
