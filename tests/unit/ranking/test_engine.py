"""Each signal, the gates, rules and the explanation on constructed candidates (no model involved)."""

from PIL import Image

from trooply.index.base import IndexHit
from trooply.index.filters import filterable_payload, parse_filters
from trooply.ranking.engine import MerchandisingRule, QuerySignals, rank
from trooply.ranking.explain import explain
from trooply.ranking.families import FamilyGuess
from trooply.ranking.profiles import load_profiles
from trooply.vision.colour import ColourTarget, colour_palette, palette_payload, text_target

PROFILES = load_profiles()
RED, BLUE = (200, 30, 35), (35, 80, 200)


def product_on_white(rgb, size=(120, 120)) -> list[list[float]]:
    image = Image.new("RGB", size, (255, 255, 255))
    image.paste(Image.new("RGB", (size[0] // 2, size[1] // 2), rgb), (size[0] // 4, size[1] // 4))
    return palette_payload(colour_palette(image))


def hit(pid, cosine=0.5, hist=None, aspect=1.0, family=None, confidence=1.0, **payload) -> IndexHit:
    body = {"product_id": pid, "image": {"colour_palette": hist or product_on_white(RED), "aspect_ratio": aspect},
            **payload}
    if family:
        body.update(family=family, family_confidence=confidence)
    return IndexHit(pid, cosine, body)


def ids(ranking) -> list[str]:
    return [c.hit.product_id for c in ranking.ranked]


def text_query(words, family="apparel", confidence=0.9) -> QuerySignals:
    return QuerySignals(FamilyGuess(family, confidence), text_target(" and ".join(words)))


def test_colour_word_in_a_text_query_prefers_the_product_of_that_colour():
    hits = [hit("blue", hist=product_on_white(BLUE)), hit("red", hist=product_on_white(RED))]
    ranking = rank(hits, text_query(["red"]), PROFILES["apparel"], [])
    assert ids(ranking) == ["red", "blue"]
    signals = {c.hit.product_id: c.signals["colour"] for c in ranking.ranked}
    # A plain red is red to people, yet the vote keeps a few percent for the orange and pink beside it.
    assert signals["red"] > 0.8 > 0.1 > signals["blue"]


def test_the_background_does_not_count_as_product_colour():
    small_red_on_white = product_on_white(RED, (200, 200))
    ranking = rank([hit("red", hist=small_red_on_white)], text_query(["red"]), PROFILES["apparel"], [])
    assert ranking.ranked[0].signals["colour"] > 0.8


def test_no_colour_word_makes_colour_neutral_and_its_weight_is_shared_not_counted():
    ranking = rank([hit("a"), hit("b", hist=product_on_white(BLUE))], text_query([]), PROFILES["apparel"], [])
    weights = ranking.ranked[0].weights
    assert "colour" not in weights and "aspect" not in weights
    assert abs(sum(weights.values()) - 1) < 1e-3
    assert ranking.ranked[0].score == ranking.ranked[1].score


def test_aspect_prefers_the_product_shaped_like_the_query_image():
    red = ColourTarget(palette=colour_palette(Image.new("RGB", (40, 40), RED)))
    query = QuerySignals(FamilyGuess("electronics", 0.9), red, aspect_ratio=0.5)
    ranking = rank([hit("wide", aspect=2.0), hit("tall", aspect=0.5)], query, PROFILES["electronics"], [])
    assert ids(ranking) == ["tall", "wide"]
    aspects = {c.hit.product_id: c.signals["aspect"] for c in ranking.ranked}
    assert aspects["tall"] == 1.0 and abs(aspects["wide"] - 0.25) < 1e-3


def test_electronics_weighs_aspect_and_category_more_than_apparel_which_weighs_colour():
    apparel, electronics = PROFILES["apparel"].weights, PROFILES["electronics"].weights
    assert apparel.colour > electronics.colour
    assert electronics.aspect > apparel.aspect and electronics.category > apparel.category


def test_category_signal_and_the_hard_gate_on_contradicting_families():
    query = text_query([], family="accessories", confidence=0.9)
    hits = [hit("sweater", family="apparel", confidence=0.95), hit("unsure-sweater", family="apparel", confidence=0.3),
            hit("bag", family="accessories", confidence=0.9), hit("twin", cosine=0.97, family="apparel")]
    ranking = rank(hits, query, PROFILES["accessories"], [])
    assert ranking.gated == ["sweater"]
    assert ids(ranking)[0] in ("bag", "twin")
    by_id = {c.hit.product_id: c.signals["category"] for c in ranking.ranked}
    assert by_id == {"unsure-sweater": 0.0, "bag": 1.0, "twin": 0.0}
    unsure_query = rank(hits, text_query([], family="accessories", confidence=0.3), PROFILES["accessories"], [])
    assert unsure_query.gated == []


def test_rules_boost_and_bury_matching_products_and_respect_their_profile():
    hits = [hit("acme", brand="acme", **{"in_stock": 1}), hit("zen", brand="zenith"), hit("other", brand="x")]
    boost = MerchandisingRule(tuple(parse_filters({"brand": "Zenith"})), 1.0)
    bury = MerchandisingRule(tuple(parse_filters({"in_stock": True})), -1.0)
    ranking = rank(hits, text_query([]), PROFILES["apparel"], [boost, bury])
    assert ids(ranking) == ["zen", "other", "acme"]
    assert {c.hit.product_id: c.signals["rules"] for c in ranking.ranked} == {"zen": 1.0, "other": 0.5, "acme": 0.0}
    footwear_only = MerchandisingRule(tuple(parse_filters({"brand": "acme"})), 1.0, profile="footwear")
    assert "rules" not in rank(hits, text_query([]), PROFILES["apparel"], [footwear_only]).ranked[0].weights


def test_popularity_is_active_only_when_the_tenant_has_feedback():
    plain = rank([hit("a"), hit("b")], text_query([]), PROFILES["apparel"], [])
    assert "popularity" not in plain.ranked[0].weights
    loved = rank([hit("a", popularity=0.9), hit("b")], text_query([]), PROFILES["apparel"], [])
    assert ids(loved) == ["a", "b"] and loved.ranked[1].signals["popularity"] == 0.5


def test_scores_stay_in_unit_range_and_explanations_name_the_reasons():
    query = text_query(["red"], family="footwear", confidence=0.9)
    ranking = rank([hit("shoe", cosine=0.9, family="footwear", popularity=0.9)], query, PROFILES["footwear"],
                   [MerchandisingRule(tuple(parse_filters({"brand": "acme"})), 0.5)])
    best = ranking.ranked[0]
    assert 0 <= best.score <= 1
    sentence = explain(best, query, visual=False)
    assert sentence.startswith("Close match to the description") and sentence.endswith(".")
    assert "same colour (red)" in sentence and "same category (footwear)" in sentence


def test_filterable_payload_round_trips_through_rule_matching():
    from trooply.index.filters import payload_matches

    payload = filterable_payload({"category": "Shoes", "price": 20, "in_stock": False, "attributes": {"size": 42}})
    assert payload_matches(parse_filters({"category": "shoes", "in_stock": False}), payload)
    assert payload_matches(parse_filters({"price": {"gte": 10, "lt": 21}, "attributes.size": 42}), payload)
    assert not payload_matches(parse_filters({"brand": "acme"}), payload)
    assert payload_matches(parse_filters({"brand": {"nin": ["acme"]}}), payload)


def test_when_the_gate_would_empty_the_page_the_best_gated_candidates_are_shown_marked_relaxed():
    # "red bag under 12 dollars" read as optics at 0.68: every candidate is a confident bag or shoe.
    query = text_query(["red"], family="optics", confidence=0.68)
    hits = [hit("bag", cosine=0.6, family="accessories"), hit("shoe", cosine=0.4, family="footwear")]
    ranking = rank(hits, query, PROFILES["optics"], [])
    assert ranking.relaxed and ranking.gated == [] and ids(ranking) == ["bag", "shoe"]
    assert all(c.gates == ["category:relaxed"] for c in ranking.ranked)
    sentence = explain(ranking.ranked[0], query, visual=False)
    assert sentence.split("; ")[1] == "a different kind of product than your query"
    assert "different category" not in sentence


def test_relaxation_waits_for_an_empty_page_and_a_profile_can_turn_it_off():
    query = text_query([], family="optics", confidence=0.9)
    mixed = [hit("bag", family="accessories"), hit("glasses", family="optics")]
    kept = rank(mixed, query, PROFILES["optics"], [])
    assert not kept.relaxed and kept.gated == ["bag"] and ids(kept) == ["glasses"]
    strict = PROFILES["optics"].model_copy(update={"gates": PROFILES["optics"].gates.model_copy(
        update={"relax_when_empty": False})})
    empty = rank([hit("bag", family="accessories")], query, strict, [])
    assert not empty.relaxed and empty.ranked == [] and empty.gated == ["bag"]
