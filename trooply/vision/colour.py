"""Compact colour and shape signals, computed once at ingest and stored in the payload.

The histogram weights the object over a plain background: the background colour is estimated from
the image border, and pixels close to it count little. A busy border (no plain background) keeps
every pixel at full weight.
"""

import re
from functools import cache, lru_cache

import numpy as np
from PIL import Image
from skimage.color import deltaE_cie76, rgb2lab

# 4 lightness x 4 a* x 4 b* bins in CIE Lab: perceptual, and small enough for every payload.
HIST_BINS = (4, 4, 4)
_LAB_RANGE = ((0.0, 100.0), (-80.0, 80.0), (-80.0, 80.0))
_THUMB = (64, 64)
_BORDER = 3
# A border whose pixels sit this close (delta E) to their median counts as a plain background.
_PLAIN_BORDER_SPREAD = 12.0
# Pixels this far (delta E) from the background colour weigh fully; closer ones proportionally less.
_OBJECT_DISTANCE = 20.0

# Colour words shoppers type, with a representative sRGB value each.
COLOUR_WORDS: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 35), "burgundy": (128, 0, 32), "maroon": (120, 20, 30), "pink": (240, 140, 170),
    "orange": (240, 130, 30), "yellow": (245, 215, 40), "gold": (212, 175, 55), "beige": (225, 205, 170),
    "cream": (245, 235, 210), "ivory": (250, 245, 230), "tan": (200, 160, 110), "khaki": (190, 175, 120),
    "brown": (110, 70, 40), "olive": (110, 115, 45), "green": (40, 150, 60), "teal": (0, 128, 128),
    "turquoise": (50, 200, 200), "blue": (35, 80, 200), "navy": (20, 30, 80), "purple": (120, 50, 160),
    "lilac": (200, 160, 220), "black": (15, 15, 15), "white": (250, 250, 250), "grey": (128, 128, 128),
    "gray": (128, 128, 128), "silver": (192, 192, 192),
}
_WORD = re.compile(r"[a-z]+")


def colour_histogram(image: Image.Image) -> list[float]:
    lab = rgb2lab(np.asarray(image.convert("RGB").resize(_THUMB, Image.Resampling.BILINEAR),
                             dtype=np.float64) / 255.0)
    return _histogram(lab.reshape(-1, 3), _object_weights(lab))


def mix_histograms(histograms: list[list[float]]) -> list[float]:
    return [round(float(v), 4) for v in np.mean(np.asarray(histograms), axis=0)]


def histogram_intersection(a: list[float], b: list[float]) -> float:
    return float(np.minimum(np.asarray(a), np.asarray(b)).sum())


def colour_words_in(text: str) -> list[str]:
    return [word for word in _WORD.findall(text.lower()) if word in COLOUR_WORDS]


def target_histogram(words: list[str]) -> list[float]:
    """What a product of these colours looks like to the histogram: a swatch per word, jittered so
    colours near a bin edge spread over both bins the way real fabric does."""
    return list(_target_histogram(tuple(dict.fromkeys(words))))


@lru_cache(maxsize=512)  # text queries repeat their colour words: keep the Lab work off the query path
def _target_histogram(words: tuple[str, ...]) -> tuple[float, ...]:
    rng = np.random.default_rng(0)
    swatches = []
    for word in words:
        lab = rgb2lab(np.asarray([[COLOUR_WORDS[word]]], dtype=np.float64) / 255.0).reshape(1, 3)
        swatches.append(lab + rng.normal(0, 4.0, (256, 3)))
    samples = np.concatenate(swatches)
    return tuple(_histogram(samples, np.ones(len(samples))))


def dominant_colour_name(histogram: list[float]) -> str:
    """The colour word whose own histogram overlaps this one most."""
    return max(_word_histograms().items(), key=lambda item: histogram_intersection(histogram, item[1]))[0]


@cache
def _word_histograms() -> dict[str, list[float]]:
    return {word: target_histogram([word]) for word in COLOUR_WORDS if word != "gray"}


def colour_swatch(histogram: list[float], most: int = 3) -> list[dict[str, float | str]]:
    """The colour words this histogram overlaps most, as the colour signal sees them, with a display colour each."""
    overlaps = sorted(((histogram_intersection(histogram, word_histogram), word)
                       for word, word_histogram in _word_histograms().items()), reverse=True)
    return [{"name": word, "hex": "#{:02x}{:02x}{:02x}".format(*COLOUR_WORDS[word]), "overlap": round(overlap, 4)}
            for overlap, word in overlaps[:most] if overlap > 0]


def aspect_ratio(width: int, height: int) -> float:
    return round(width / height, 4)


def _object_weights(lab: np.ndarray) -> np.ndarray:
    border = np.concatenate([lab[:_BORDER].reshape(-1, 3), lab[-_BORDER:].reshape(-1, 3),
                             lab[:, :_BORDER].reshape(-1, 3), lab[:, -_BORDER:].reshape(-1, 3)])
    background = np.median(border, axis=0)
    if np.median(deltaE_cie76(border, background)) > _PLAIN_BORDER_SPREAD:
        return np.ones(lab.shape[0] * lab.shape[1])
    weights = np.clip(deltaE_cie76(lab, background) / _OBJECT_DISTANCE, 0.0, 1.0).reshape(-1)
    # A plain image with no object at all: every pixel is the "object".
    return weights if weights.sum() > 0.02 * weights.size else np.ones_like(weights)


def _histogram(lab: np.ndarray, weights: np.ndarray) -> list[float]:
    lab = lab.copy()
    for channel, (low, high) in enumerate(_LAB_RANGE):
        np.clip(lab[:, channel], low, high - 1e-6, out=lab[:, channel])
    hist, _ = np.histogramdd(lab, bins=HIST_BINS, range=_LAB_RANGE, weights=weights)
    hist = hist.ravel() / hist.sum()
    return [round(float(v), 4) for v in hist]


