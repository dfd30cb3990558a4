"""The lexical leg: tokenisation, the words of a product, and the hybrid query on both engines (Qdrant Edge on a
temporary directory, the server API through qdrant-client in memory)."""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import models

from tests.support.index_engines import SPACE, Engine, unit
from trooply.index.base import HybridQuery, IndexPoint, shared_point_id
from trooply.index.edge import EdgeIndex
from trooply.index.filters import filterable_payload, parse_filters
from trooply.index.tiers import TENANT_KEY, TieredIndex
from trooply.index.words import WORDS_VECTOR, WordsMatch, lexicon
from trooply.search.fusion import MIN_WORDS_SCORE
from trooply.vectors import VectorSpace

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")




def product(product_id: str, i: int, **metadata: Any) -> IndexPoint:
    return IndexPoint(product_id, unit(i), {**filterable_payload(metadata), "metadata": metadata})


CATALOGUE = [
    product("p1", 0, title="Nike Air Max 90 sneakers", brand="Nike", category="shoes",
            attributes={"sku": "SKU-83421", "colour": "white"}),
    product("p2", 1, title="Samsonite cabin suitcase", brand="Samsonite", category="luggage",
            description="Hard shell, four wheels"),
    product("p3", 2, title="Merino crew-neck jumper", brand="Acme", category="knitwear",
            attributes={"gtin": "05012345678900"}),
    product("p4", 3, title="Red leather tote", brand="Acme", category="bags", description="A café classic"),
]


@pytest.mark.parametrize("typed, same_as", [
    ("Café", "cafe"), ("sneakers", "sneaker"), ("RUNNING", "runs"), ("Über", "uber"), ("B07XJ8C8F5", "b07xj8c8f5"),
])
def test_tokens_are_folded_lower_cased_and_stemmed(typed: str, same_as: str) -> None:
    assert lexicon().tokens(typed) == lexicon().tokens(same_as) != frozenset()


@pytest.mark.parametrize("typed, holds", [
    ("SKU-83421", ["sku", "83421", "sku83421"]),  # a code: its parts and its joined form
    ("air max 90", ["air", "max", "90"]),  # numbers are kept
    ("crew-neck", ["crew", "neck", "crewneck"]),
    ("iphone15", ["iphone15"]),
])
def test_codes_and_numbers_are_kept_whole_and_in_parts(typed: str, holds: list[str]) -> None:
    tokens = lexicon().tokens(typed)
    for word in holds:
        assert lexicon().tokens(word) <= tokens


@pytest.mark.parametrize("typed", ["the", "of and the", "!!! ...", ""])
def test_stop_words_and_punctuation_give_no_tokens(typed: str) -> None:
    query = lexicon().query(typed)
    assert not query.vector and query.terms == ()


def test_a_match_names_the_typed_words_and_the_field_holding_them() -> None:
    payload = {"product_id": "p1", **CATALOGUE[0].payload}
    match = lexicon().match(lexicon().query("White AIR max 90 boots"), payload)
    # air, max, 90 in the title, white in the attributes, boots nowhere
    assert match.terms == ("White", "AIR", "max", "90") and match.field == "title" and not match.identifier
    assert lexicon().match(lexicon().query("white"), payload).field == "attributes"
    assert lexicon().match(lexicon().query("sku-83421"), payload).identifier
    assert lexicon().match(lexicon().query("suitcase"), payload) == WordsMatch((), None)




@pytest.fixture(params=["edge", "server"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    opened = Engine(request.param, tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def index(engine: Engine) -> TieredIndex:
    index = engine.open()
    index.upsert("a", CATALOGUE)
    return index


def words_query(text: str, limit: int = 10, filters: dict[str, Any] | None = None,
                vector: np.ndarray | None = None) -> HybridQuery:
    words = lexicon().query(text)
    return HybridQuery(unit(7) if vector is None else vector, limit, words.vector, words.identifier,
                       parse_filters(filters))


def found(index: TieredIndex, text: str, tenant_id: str = "a", **options: Any) -> list[str]:
    return [hit.product_id for hit in index.hybrid_query(tenant_id, words_query(text, **options)).words]


def test_the_words_leg_finds_titles_brands_codes_and_descriptions(index: TieredIndex) -> None:
    assert found(index, "air max 90")[0] == "p1"
    assert found(index, "sku83421") == ["p1"] and found(index, "SKU 83421")[0] == "p1"
    assert found(index, "samsonite cabin") == ["p2"]
    assert found(index, "merino crewneck")[0] == "p3"
    assert found(index, "wheels") == ["p2"] and found(index, "cafe") == ["p4"]


def test_every_hit_of_every_leg_carries_its_cosine(index: TieredIndex) -> None:
    hits = index.hybrid_query("a", words_query("samsonite", vector=unit(1) + unit(0)))
    (word_hit,) = hits.words
    assert word_hit.product_id == "p2" and word_hit.score == pytest.approx(1 / np.sqrt(2), abs=1e-5)
    assert word_hit.words_score is not None and word_hit.words_score > 0 and word_hit.words_coverage == 1.0
    (half,) = index.hybrid_query("a", words_query("samsonite zephyr")).words
    assert half.product_id == "p2" and half.words_coverage == 0.5  # one of the query's two words
    assert {h.product_id: h.score for h in hits.pictures}["p2"] == pytest.approx(word_hit.score, abs=1e-5)
    assert "_ids" not in word_hit.payload and "product_id" in word_hit.payload


def test_an_exact_identifier_is_found_whatever_its_case(index: TieredIndex) -> None:
    assert [h.product_id for h in index.hybrid_query("a", words_query("sku-83421")).exact] == ["p1"]
    assert [h.product_id for h in index.hybrid_query("a", words_query("P3")).exact] == ["p3"]
    assert [h.product_id for h in index.hybrid_query("a", words_query("05012345678900")).exact] == ["p3"]
    assert index.hybrid_query("a", words_query("sku-8342")).exact == []


def test_an_identifier_with_spaces_is_matched_whole(index: TieredIndex) -> None:
    index.upsert("a", [product("p5", 4, title="Wireless mouse", attributes={"mpn": "MX 500  BLK"})])
    assert [h.product_id for h in index.hybrid_query("a", words_query(" mx 500 blk ")).exact] == ["p5"]
    assert index.hybrid_query("a", words_query("mx 500")).exact == []  # a part is not the identifier
    assert lexicon().query("red leather tote").identifier is None  # words alone: left to BM25
    assert lexicon().query("a b c d 5").identifier is None  # too many words for a code


def test_filters_apply_to_every_leg(index: TieredIndex) -> None:
    hits = index.hybrid_query("a", words_query("sku-83421 samsonite", filters={"brand": "samsonite"}))
    assert [h.product_id for h in hits.words] == ["p2"]
    assert {h.product_id for h in hits.pictures} == {"p2"}
    assert index.hybrid_query("a", words_query("SKU-83421", filters={"brand": "acme"})).exact == []


def test_another_tenants_words_never_change_a_tenants_results_or_scores(engine: Engine, index: TieredIndex) -> None:
    index.upsert("a", [product("z1", 4, title="Zephyr trail runner"), product("z2", 5, title="Blue zephyr cap")])

    def scores() -> list[tuple[str, float]]:
        hits = index.hybrid_query("a", words_query("zephyr runner tote", vector=unit(4)))
        return [(h.product_id, round(h.words_score or 0.0, 5)) for h in hits.words]

    before = scores()
    index.upsert("b", [product(f"b{i}", i, title="zephyr zephyr zephyr", description="zephyr") for i in range(1000)])
    assert scores() == before and [p for p, _ in before] == ["z1", "p4", "z2"]
    assert found(index, "zephyr", tenant_id="b", limit=3) and found(index, "tote", tenant_id="b") == []


def test_words_every_product_holds_bring_no_hits_past_the_least_score(index: TieredIndex) -> None:
    # In tenant "c" every product is a canvas bag and one is also a zephyr: "canvas" and "bag" say nothing there.
    index.upsert("c", [product(f"c{i}", i % SPACE.size, title="Canvas bag" + (" zephyr" if i == 0 else ""))
                       for i in range(100)])
    query = words_query("canvas zephyr")
    assert [hit.product_id for hit in index.hybrid_query("c", replace(query, words_min_score=MIN_WORDS_SCORE)).words] \
        == ["c0"]
    assert len(index.hybrid_query("c", query).words) == 10  # without the least score: by position, the rest too
    assert index.hybrid_query("c", replace(words_query("canvas bag"), words_min_score=MIN_WORDS_SCORE)).words == []


def test_new_text_in_a_payload_write_brings_new_words(index: TieredIndex) -> None:
    index.set_payload("a", "p4", {**filterable_payload({"brand": "Acme"}),
                                  "metadata": {"title": "Green canvas backpack", "brand": "Acme"}})
    assert found(index, "backpack") == ["p4"] and found(index, "tote") == []
    index.set_payload("a", "p4", {"popularity": 0.9})  # no text: the words stay
    assert found(index, "backpack") == ["p4"]
    index.set_payload("a", "missing", {"metadata": {"title": "backpack"}})  # not in the index: left alone
    assert found(index, "backpack") == ["p4"] and index.count("a") == 4


def test_a_promoted_tenant_keeps_its_words(engine: Engine) -> None:
    index = engine.open()
    index.upsert("a", CATALOGUE)
    index.promote("a").result(timeout=30)
    assert index.tier("a").tier == "dedicated"
    assert found(index, "samsonite") == ["p2"]
    assert [h.product_id for h in index.hybrid_query("a", words_query("sku-83421")).exact] == ["p1"]


def test_an_index_built_before_the_words_leg_gets_its_words_without_an_encode(engine: Engine) -> None:
    payloads = {p.product_id: {**p.payload, "product_id": p.product_id, TENANT_KEY: "a"} for p in CATALOGUE}
    vectors = {p.product_id: p.vector.tolist() for p in CATALOGUE}
    engine.write_old_shared_store("a", {pid: (vectors[pid], payload) for pid, payload in payloads.items()})
    index = engine.open()
    assert index.count("a") == 4  # searches answer while the words are filled
    index.fill_all_words()  # what `trooply migrate` does; opening the index has started it already
    assert found(index, "samsonite cabin") == ["p2"] and found(index, "air max")[0] == "p1"
    assert [h.product_id for h in index.hybrid_query("a", words_query("SKU-83421")).exact] == ["p1"]
    (hit,) = index.hybrid_query("a", words_query("samsonite", vector=unit(1))).words
    assert hit.score == pytest.approx(1.0, abs=1e-5)  # its picture vector untouched


def test_trooply_migrate_gives_an_older_index_its_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from trooply.cli import main

    for name, value in {"DATA_DIR": str(tmp_path), "CLIP_MODEL": "trooply-test-tiny",
                        "CLIP_PRETRAINED": "random"}.items():
        monkeypatch.setenv(f"TROOPLY_{name}", value)
    space = VectorSpace("trooply-test-tiny__random", 64)
    path = tmp_path / "index" / space.name / "shared"
    vectors = {space.name: qe.EdgeVectorParams(size=space.size, distance=qe.Distance.Cosine)}
    shard = qe.EdgeShard.create(str(path), qe.EdgeConfig(vectors=vectors))
    shard.update(qe.UpdateOperation.upsert_points([
        qe.Point(shared_point_id("a", p.product_id), {space.name: np.resize(p.vector, 64).tolist()},
                 {**p.payload, "product_id": p.product_id, TENANT_KEY: "a"}) for p in CATALOGUE]))
    shard.flush()
    shard.close()

    assert main(["migrate"]) == 0
    assert "every indexed product has its words" in capsys.readouterr().out
    shard = qe.EdgeShard.load(str(path))
    try:
        without = qe.Filter(must_not=[qe.HasVectorCondition("words")])
        assert shard.count(qe.CountRequest(exact=True)) == 4
        assert shard.count(qe.CountRequest(filter=without, exact=True)) == 0
    finally:
        shard.close()


def test_the_words_do_not_hide_pictures_waiting_for_their_graph(tmp_path: Path) -> None:
    """Qdrant Edge counts sparse vectors as indexed: a reopened shard still knows its pictures have no graph yet."""
    index = EdgeIndex(tmp_path, SPACE, optimize_threshold=1000)
    index.upsert("a", [product(f"p{i}", i, title=f"product {i}") for i in range(30)])
    index.close()
    reopened = EdgeIndex(tmp_path, SPACE, optimize_threshold=20)
    try:
        reopened.upsert("a", [product("p30", 30, title="one more")])
        assert reopened.graph_build("a").building  # 31 pictures written since the last build
    finally:
        reopened.close()


def test_an_older_collection_the_server_cannot_give_words_answers_with_pictures_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine("server", tmp_path)
    name = f"trooply_{SPACE.name}.shared"
    engine.client.create_collection(name, vectors_config={
        SPACE.name: models.VectorParams(size=SPACE.size, distance=models.Distance.COSINE)})
    old = CATALOGUE[1]
    engine.client.upsert(name, [models.PointStruct(id=shared_point_id("a", old.product_id),
                                                   vector={SPACE.name: old.vector.tolist()},
                                                   payload={**old.payload, "product_id": old.product_id,
                                                            TENANT_KEY: "a"})])

    add_vector = engine.client.create_vector_name

    def refuse(name: str, vector_name: str, *args: Any, **kwargs: Any) -> Any:  # a server that cannot add a sparse one
        if vector_name == WORDS_VECTOR:
            raise RuntimeError("Unexpected Response: 404 (Not Found)")
        return add_vector(name, vector_name, *args, **kwargs)

    monkeypatch.setattr(engine.client, "create_vector_name", refuse)
    try:
        index = engine.open()
        index.upsert("a", [CATALOGUE[0], CATALOGUE[3]])  # writes go on, without words
        index.set_payload("a", "p4", {"metadata": {"title": "Red leather tote bag"}})
        hits = index.hybrid_query("a", words_query("sku-83421", vector=unit(1)))
        assert hits.words == [] and hits.pictures[0].product_id == "p2"
        assert [h.product_id for h in hits.exact] == ["p1"]  # exact identifiers still work, from the payload
        index.fill_all_words()  # nothing to fill, no error
        assert "pictures only" in caplog.text
    finally:
        engine.close()
