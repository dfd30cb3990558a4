"""A tenant's language on both engines: its words tokenised in it when written, another tenant's in its own, and a
change of language re-tokenising the stored words (resumable, no encode)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qdrant_edge as qe

from tests.support.index_engines import Engine, unit
from trooply.index.base import HybridQuery, IndexPoint
from trooply.index.tiers import TENANT_KEY, TieredIndex
from trooply.index.words import LANGUAGES, lexicon

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")




def product(product_id: str, i: int, title: str) -> IndexPoint:
    return IndexPoint(product_id, unit(i), {"metadata": {"title": title}})


JACKETS = [product(f"j{i}", i, f"Rote Jacke aus Leder für Kinder {i}") for i in range(6)]
BAG = product("bag", 6, "Schwarze Tasche")




@pytest.fixture(params=["edge", "server"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    opened = Engine(request.param, tmp_path)
    yield opened
    opened.close()


def found(index: TieredIndex, tenant_id: str, text: str, language: str) -> list[str]:
    words = lexicon(language).query(text)
    query = HybridQuery(unit(7), 10, words.vector, words.identifier, [])
    return sorted(hit.product_id for hit in index.hybrid_query(tenant_id, query).words)


def test_every_language_offered_is_one_the_tokeniser_knows() -> None:
    for language in LANGUAGES:
        assert lexicon(language).language == language
    with pytest.raises(ValueError, match="unsupported language"):
        qe.Bm25(qe.Bm25Config(language="klingon"))


def test_each_tenant_s_words_are_tokenised_in_its_own_language(engine: Engine) -> None:
    engine.languages["de"] = "german"
    index = engine.open()
    index.upsert("de", [*JACKETS, BAG])
    index.upsert("en", [*JACKETS, BAG])
    # German stemming finds "Jacke" for "Jacken", and "aus" is a German stop word; English does neither.
    assert found(index, "de", "Jacken", "german") == [p.product_id for p in JACKETS]
    assert found(index, "en", "Jacken", "english") == []
    assert found(index, "de", "Taschen", "german") == ["bag"]
    assert lexicon("german").query("aus der").vector.indices == ()
    assert len(found(index, "en", "aus", "english")) == len(JACKETS)


def test_a_change_of_language_re_tokenises_only_the_words_not_in_it_yet(engine: Engine) -> None:
    index = engine.open()
    index.upsert("a", JACKETS[:4])
    assert found(index, "a", "Kind", "german") == []
    engine.languages["a"] = "german"
    index.upsert("a", JACKETS[4:])  # written after the change: already in German
    assert found(index, "a", "Kind", "german") == ["j4", "j5"]
    assert index.retokenise("a") == 4  # only the four written before
    assert found(index, "a", "Kind", "german") == [p.product_id for p in JACKETS]
    assert index.retokenise("a") == 0  # resumed after a stop: nothing left to do
    (hit,) = index.hybrid_query("a", HybridQuery(unit(2), 1, lexicon("german").query("jacke").vector, None,
                                                 [])).pictures
    assert hit.product_id == "j2" and hit.score == pytest.approx(1.0, abs=1e-5)  # pictures untouched
    assert "_lang" not in hit.payload  # internal: never shown


def test_a_tenant_s_re_tokenise_leaves_the_other_tenants_alone(engine: Engine) -> None:
    index = engine.open()
    index.upsert("a", JACKETS)
    index.upsert("b", JACKETS)
    engine.languages["a"] = "german"
    assert index.retokenise("a") == len(JACKETS)
    assert found(index, "a", "Kind", "german") == [p.product_id for p in JACKETS]
    assert found(index, "b", "Kind", "english") == [] and len(found(index, "b", "kinder", "english")) == 6


def test_a_promoted_tenant_s_words_stay_in_its_language(engine: Engine) -> None:
    engine.languages["a"] = "german"
    index = engine.open()
    index.upsert("a", JACKETS)
    index.promote("a").result(timeout=30)
    assert index.tier("a").tier == "dedicated"
    assert found(index, "a", "Kind", "german") == [p.product_id for p in JACKETS]
    assert index.retokenise("a") == 0


def test_an_older_index_is_given_its_words_in_each_tenant_s_language(engine: Engine) -> None:
    engine.languages["a"] = "german"
    payloads: dict[str, dict[str, Any]] = {p.product_id: {**p.payload, "product_id": p.product_id, TENANT_KEY: "a"}
                                           for p in JACKETS}
    vectors = {p.product_id: p.vector.tolist() for p in JACKETS}
    engine.write_old_shared_store("a", {pid: (vectors[pid], payload) for pid, payload in payloads.items()})
    index = engine.open()
    index.fill_all_words()
    assert found(index, "a", "Kind", "german") == [p.product_id for p in JACKETS]
    assert index.retokenise("a") == 0  # given them in German already
