"""The colour signal in ranking: palettes against words and pictures, old payloads, and the explanation."""

from PIL import Image

from tests.support.product_photos import garment
from trooply.index.base import IndexHit
from trooply.ranking.engine import QuerySignals, rank
from trooply.ranking.explain import explain
from trooply.ranking.families import FamilyGuess
from trooply.ranking.profiles import load_profiles
from trooply.vision.colour import ColourTarget, colour_palette, mix_palettes, palette_payload, text_target

PROFILES = load_profiles()
RED, YELLOW, BLUE, NAVY = (200, 30, 35), (245, 215, 40), (30, 60, 200), (20, 30, 80)
APPAREL = FamilyGuess("apparel", 0.9)


def product(pid: str, rgb, cosine: float = 0.9) -> IndexHit:
    return IndexHit(pid, cosine, {"product_id": pid, "family": "apparel", "family_confidence": 0.9,
                                  "image": {"colour_palette": palette_payload(colour_palette(garment(rgb))),
                                            "aspect_ratio": 0.8}})


def old_product(pid: str) -> IndexHit:
    """A payload written before palettes: the 64-bin histogram only."""
    histogram = [0.0] * 64
    histogram[37] = 1.0
    return IndexHit(pid, 0.9, {"product_id": pid, "image": {"colour_hist": histogram, "aspect_ratio": 0.8}})


def test_a_multi_image_search_explains_the_colour_the_product_shares():
    red, yellow = colour_palette(garment(RED)), colour_palette(garment(YELLOW))
    query = QuerySignals(APPAREL, ColourTarget(palette=mix_palettes([red, yellow])))
    ranking = rank([product("red", RED), product("blue", BLUE)], query, PROFILES["apparel"], [])
    best = ranking.ranked[0]
    assert best.hit.product_id == "red"
    sentence = explain(best, query, visual=True)
    assert "same colour (red)" in sentence and "yellow" not in sentence


def test_a_text_search_names_the_shoppers_colour_or_the_products_own():
    query = QuerySignals(APPAREL, text_target("navy blazer"))
    ranking = rank([product("navy", NAVY), product("red", RED)], query, PROFILES["apparel"], [])
    assert [c.hit.product_id for c in ranking.ranked] == ["navy", "red"]
    assert "same colour (navy)" in explain(ranking.ranked[0], query, visual=False)
    assert "same colour" not in explain(ranking.ranked[1], query, visual=False)


def test_payloads_from_before_palettes_rank_as_neutral_and_never_fail():
    for query in (QuerySignals(APPAREL, text_target("red")),
                  QuerySignals(APPAREL, ColourTarget(palette=colour_palette(Image.new("RGB", (40, 40), RED))))):
        ranking = rank([old_product("old"), product("red", RED)], query, PROFILES["apparel"], [])
        signals = {c.hit.product_id: c.signals["colour"] for c in ranking.ranked}
        assert signals["old"] == 0.5 and signals["red"] > 0.8
        assert "same colour" not in explain(ranking.ranked[1], query, visual=False)


def test_every_signal_stays_within_the_unit_range():
    odd = IndexHit("odd", 1.2, {"product_id": "odd", "popularity": 1.5,
                                "image": {"colour_palette": [[43.0, 63.0, 42.0, 1.6]], "aspect_ratio": 0.8}})
    query = QuerySignals(APPAREL, text_target("red"), aspect_ratio=0.8)
    ranking = rank([odd, product("red", RED)], query, PROFILES["apparel"], [])
    for candidate in ranking.ranked:
        assert all(0.0 <= value <= 1.0 for value in candidate.signals.values())
        assert 0.0 <= candidate.score <= 1.0
