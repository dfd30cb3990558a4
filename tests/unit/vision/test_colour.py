"""Product palettes from rendered photos, and how a palette answers colour words and other palettes."""

import json

import pytest
from PIL import Image

from tests.support.product_photos import SKIN_TONES, garment, jpeg, on_model, printed, shaded, textured
from trooply.vision.colour import (
    ColourTarget,
    aspect_ratio,
    colour_match,
    colour_palette,
    mix_palettes,
    palette_from_payload,
    palette_names,
    palette_payload,
    text_target,
)

BLUE, RED, GREEN, NAVY, BROWN, BURGUNDY = (30, 60, 200), (200, 30, 35), (40, 150, 60), (20, 30, 80), \
    (120, 72, 40), (128, 0, 32)  # burgundy: #800020
WHITE, BLACK, YELLOW = (250, 250, 250), (15, 15, 15), (245, 215, 40)


def main_colour(image: Image.Image) -> dict:
    return palette_names(colour_palette(image))[0]


@pytest.mark.parametrize("rgb, family", [(BLUE, "blue"), (RED, "red"), (GREEN, "green"), (NAVY, "blue"),
                                         (BROWN, "brown"), (BURGUNDY, "red"), (WHITE, "white"), (BLACK, "black")])
@pytest.mark.parametrize("photo", [garment, shaded, textured, jpeg, on_model], ids=lambda f: f.__name__)
def test_the_main_colour_survives_shading_texture_jpeg_and_a_model(photo, rgb, family):
    image = photo(garment(rgb)) if photo is jpeg else photo(rgb)
    main = main_colour(image)
    assert main["family"] == family and main["share"] >= 0.6


def test_a_plain_blue_rectangle_is_blue():
    for rgb in ((0x1E, 0x3C, 0xC8), (0, 0, 255)):
        assert palette_names(colour_palette(Image.new("RGB", (80, 60), rgb))) == [
            {"name": "blue", "family": "blue", "share": 1.0,
             "hex": palette_names(colour_palette(Image.new("RGB", (80, 60), rgb)))[0]["hex"]}]


def test_skin_and_hair_do_not_become_the_garments_colour():
    for skin in SKIN_TONES:
        names = palette_names(colour_palette(on_model(BLUE, skin)))
        assert names[0]["name"] == "blue" and names[0]["share"] >= 0.75


def test_white_on_white_and_black_on_black_keep_their_colour():
    assert main_colour(garment((248, 248, 246), outline=(190, 190, 190)))["name"] == "white"
    assert main_colour(garment((22, 22, 24), background=(5, 5, 5), outline=(60, 60, 60)))["name"] == "black"
    assert main_colour(shaded((20, 20, 20), background=(0, 0, 0)))["name"] == "black"


def test_a_two_colour_product_keeps_both_colours_with_their_shares():
    image = garment(BLACK, background=(200, 200, 200))
    image.paste(Image.new("RGB", (120, 100), WHITE), (60, 150))  # the lower half white
    names = {entry["name"]: entry["share"] for entry in palette_names(colour_palette(image))}
    assert set(names) == {"black", "white"} and all(share > 0.3 for share in names.values())
    striped = palette_names(colour_palette(printed(NAVY, YELLOW)))
    assert striped[0]["name"] == "navy" and "yellow" in {entry["family"] for entry in striped}


def test_black_and_white_asks_for_both_colours():
    both = colour_palette(printed(BLACK, WHITE, background=(200, 200, 200)))
    black = colour_palette(garment(BLACK))
    target = text_target("black and white sneakers")
    assert colour_match(target, both).score > colour_match(target, black).score
    assert colour_match(target, both).shared == "black and white"
    either = text_target("black or white")
    assert colour_match(either, black).score > 0.9


def test_colour_words_rank_the_right_products_first():
    palettes = {name: colour_palette(garment(rgb)) for name, rgb in
                {"blue": BLUE, "navy": NAVY, "sky": (117, 187, 253), "purple": (126, 30, 156), "red": RED}.items()}
    def order(text):
        target = text_target(text)
        return sorted(palettes, key=lambda name: -colour_match(target, palettes[name]).score)
    assert set(order("blue jeans")[:3]) == {"blue", "navy", "sky"}
    assert order("light blue shirt")[0] == "sky"
    assert order("navy blazer")[0] == "navy"
    assert order("purple")[0] == "purple"


def test_palettes_compare_perceptually_and_name_the_colour_they_share():
    red, yellow, blue = (colour_palette(garment(rgb)) for rgb in (RED, YELLOW, BLUE))
    darker_red = colour_palette(shaded((170, 25, 30)))
    assert colour_match(ColourTarget(palette=red), darker_red).score > 0.7
    assert colour_match(ColourTarget(palette=red), blue).score < 0.1
    red_and_yellow = ColourTarget(palette=mix_palettes([red, yellow]))
    match = colour_match(red_and_yellow, red)
    assert match.shared == "red" and 0.3 < match.score <= 1.0


def test_scores_stay_within_the_unit_range_even_for_odd_payloads():
    odd = palette_from_payload([[50.0, 60.0, 40.0, 1.7], [50.0, 60.0, 40.0, 0.9]])
    assert odd is not None
    for target in (text_target("red"), text_target("red and white"), ColourTarget(palette=odd)):
        assert 0.0 <= colour_match(target, odd).score <= 1.0


def test_old_and_malformed_payloads_have_no_palette():
    assert palette_from_payload(None) is None
    assert palette_from_payload([0.1] * 64) is None  # an old histogram
    assert palette_from_payload([["a", 1, 2, 3]]) is None
    assert palette_from_payload([[1, 2, 3]]) is None


def test_the_stored_palette_is_small_and_round_trips():
    palette = colour_palette(printed(NAVY, YELLOW))
    stored = palette_payload(palette)
    assert len(json.dumps(stored, separators=(",", ":"))) <= 140
    assert palette_from_payload(json.loads(json.dumps(stored))) == palette
    assert abs(sum(colour.share for colour in palette) - 1.0) < 0.01


def test_palette_does_not_depend_on_the_image_size():
    assert colour_palette(Image.new("RGB", (500, 20), RED)) == colour_palette(Image.new("RGB", (50, 80), RED))


def test_aspect_ratio_is_width_over_height():
    assert aspect_ratio(300, 200) == 1.5 and aspect_ratio(100, 400) == 0.25
