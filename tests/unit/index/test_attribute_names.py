"""Every attribute name a product may hold is filterable and groupable exactly, on both engines; any other name is
a 422 naming the field. The names are a generated table: each printable ASCII character alone and inside a name,
look-alikes of a dot, path syntax, quotes, control characters, non-ASCII text, the longest names, and random mixes."""

import random
import string
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from qdrant_client import QdrantClient

from trooply.catalog.schemas import ProductIn
from trooply.errors import InvalidRequest
from trooply.index.base import IndexPoint, VectorIndex
from trooply.index.edge import EdgeIndex
from trooply.index.filters import check_group_field, filterable_payload, parse_filters
from trooply.index.server import QdrantServerIndex
from trooply.ranking.engine import RankedCandidate
from trooply.search.page import grouped
from trooply.vectors import VectorSpace

SPACE = VectorSpace("clip-test", 4)
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")

DOT_LOOKALIKES = ["\u2024", "\uff0e", "\u3002", "\u00b7", "\u2027", "\ufe52"]
PATH_SYNTAX = ["a[0]", "x[]", "[0]", "[]", "a[*]", "*", "$", "$.a", "a..", "..", "a.b", "attributes.a"]
TEXT = ["size (EU)", "size", "Size", " size", "size ", "\"quoted\"", "it's", "100%", "a\\b", "é", "日本語", "👟 fit",
        "e\u0301", "\u202eright", "a\tb", "\x01", "\x7f", "a\nb", "attributes_hex", "73697a65", "73697a652028455529",
        "x" * 64, "(" * 64, "é" * 64, "x" * 65, "", " ", "\u00a0"]


def _generated_names() -> list[str]:
    ascii_printable = [c for c in string.printable if c not in "\x0b\x0c"]
    names = [*ascii_printable, *(f"a{c}b" for c in ascii_printable), *DOT_LOOKALIKES,
             *(f"size{c}eu" for c in DOT_LOOKALIKES), *PATH_SYNTAX, *TEXT]
    rng = random.Random(20)
    pool = string.ascii_letters + string.digits + string.punctuation + " é日\u2024[]\"'\\\x01"
    names += ["".join(rng.choice(pool) for _ in range(rng.randint(1, 70))) for _ in range(150)]
    return list(dict.fromkeys(names))


def _stored_name(name: str) -> str | None:
    """The name as POST /v1/products stores it; None when POST refuses it."""
    try:
        product = ProductIn.model_validate({"id": "p", "image_url": "http://127.0.0.1/p.jpg",
                                            "attributes": {name: "v"}})
    except ValidationError:
        return None
    (stored,) = (product.attributes or {}).keys()
    return stored


NAMES = _generated_names()
ACCEPTED = {name: stored for name in NAMES if (stored := _stored_name(name)) is not None}
# One product per stored name: several sent names may strip to one stored name.
STORED = list(dict.fromkeys(ACCEPTED.values()))
REFUSED = [name for name in NAMES if name not in ACCEPTED]


def test_the_table_holds_both_kinds_of_name() -> None:
    assert len(STORED) > 250 and "size (EU)" in STORED and "a[0]" in STORED and "\u2024" in STORED
    assert {"a.b", "", " ", "x" * 65, "attributes.a"} <= set(REFUSED) and "size\uff0eeu" not in REFUSED


@pytest.fixture(params=["edge", "server"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorIndex]:
    client = QdrantClient(":memory:")
    opened: VectorIndex = EdgeIndex(tmp_path, SPACE) if request.param == "edge" else QdrantServerIndex(client, SPACE)
    opened.upsert("t1", [IndexPoint(f"p{i}", np.ones(SPACE.size, np.float32), {
        "product_id": f"p{i}", **filterable_payload(metadata(name, i)), "metadata": metadata(name, i)})
        for i, name in enumerate(STORED)])
    yield opened
    if request.param == "edge":
        opened.close()
    client.close()


def metadata(name: str, i: int) -> dict:
    return {"attributes": {name: f"Value-{i}"}}


def matching(index: VectorIndex, filters: dict) -> set[str]:
    return {hit.product_id for hit in index.query("t1", np.ones(SPACE.size, np.float32), 1000, parse_filters(filters))}


def test_every_accepted_name_filters_exactly(index: VectorIndex) -> None:
    everyone = {f"p{i}" for i in range(len(STORED))}
    wrong = {}
    for sent, stored in ACCEPTED.items():
        i = STORED.index(stored)
        field = f"attributes.{sent}"
        found = (matching(index, {field: f"value-{i}"}), matching(index, {field: [f"VALUE-{i}", "other"]}),
                 matching(index, {field: {"nin": [f"value-{i}"]}}))
        if found != ({f"p{i}"}, {f"p{i}"}, everyone - {f"p{i}"}):
            wrong[sent] = found
    assert wrong == {}


def test_every_accepted_name_groups_exactly(index: VectorIndex) -> None:
    hits = index.query("t1", np.ones(SPACE.size, np.float32), 1000)
    candidates = [RankedCandidate(hit, hit.score, {}, {}) for hit in hits]
    wrong = {}
    for sent, stored in ACCEPTED.items():
        check_group_field(f"attributes.{sent}")
        groups = {entry.candidate.hit.product_id: entry.group
                  for entry in grouped(candidates, f"attributes.{sent}", 1) if entry.group is not None}
        if groups != {f"p{STORED.index(stored)}": f"Value-{STORED.index(stored)}"}:
            wrong[sent] = groups
    assert wrong == {}


@pytest.mark.parametrize("name", REFUSED, ids=repr)
def test_a_name_no_product_can_hold_is_a_422_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidRequest) as filtered:
        parse_filters({f"attributes.{name}": "x"})
    assert filtered.value.code == "invalid_filter" and filtered.value.details == {"field": f"attributes.{name}"}
    assert filtered.value.status == 422
    with pytest.raises(InvalidRequest) as grouped_on:
        check_group_field(f"attributes.{name}")
    assert grouped_on.value.code == "invalid_group_by"
