from PIL import Image

from trooply.vision.colour import HIST_BINS, aspect_ratio, colour_histogram


def test_histogram_is_a_normalised_distribution_that_separates_colours():
    red = colour_histogram(Image.new("RGB", (50, 80), (220, 20, 20)))
    blue = colour_histogram(Image.new("RGB", (50, 80), (20, 20, 220)))
    assert len(red) == HIST_BINS[0] * HIST_BINS[1] * HIST_BINS[2]
    assert abs(sum(red) - 1) < 1e-3 and abs(sum(blue) - 1) < 1e-3
    overlap = sum(min(r, b) for r, b in zip(red, blue, strict=True))
    assert overlap < 0.05
    assert colour_histogram(Image.new("RGB", (500, 20), (220, 20, 20))) == red


def test_aspect_ratio_is_width_over_height():
    assert aspect_ratio(300, 200) == 1.5 and aspect_ratio(100, 400) == 0.25
