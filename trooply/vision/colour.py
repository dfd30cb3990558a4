"""Compact colour and shape signals, computed once at ingest and stored in the payload.

A product's colour is a palette: up to five dominant colours in CIE Lab with their shares of the object, stored
as `image.colour_palette` = [[L, a, b, share], ...] (about 120 bytes of JSON). The object is weighed over a plain
background: the background colour is estimated from the image border, pixels close to it count little, and the
region the object's outline encloses counts fully (a white shirt on white keeps its white). A busy border (no plain
background) keeps every pixel. Skin tones count little beside other colours (a garment on a model), and the centre
of the picture counts more than its edges.

Two palettes compare perceptually (CIEDE2000 between their colours, plus how much of each basic family they share);
a palette answers colour words through the naming model of `colour_names`. Payloads written before palettes
(`colour_hist` only) have no palette: their colour signal stays neutral until `trooply migrate` recomputes them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image
from scipy.ndimage import binary_erosion, binary_fill_holes, maximum_filter, median_filter
from skimage.color import deltaE_cie76, deltaE_ciede2000, rgb2lab

from trooply.vision.colour_names import (
    ColourWords,
    colour_words_in,
    family_posterior,
    lab_to_hex,
    name_colours,
    phrase_membership,
)

_THUMB = (64, 64)
_BORDER = 3
# A border whose pixels sit this close (delta E) to their median counts as a plain background.
_PLAIN_BORDER_SPREAD = 12.0
# Pixels this far (delta E) from the background colour weigh fully; closer ones proportionally less.
_OBJECT_DISTANCE = 20.0
# Pixels this far from the background draw the object's outline; what the outline encloses is the object.
_OUTLINE_DISTANCE = 6.0
# Skin tones weigh this much when the object has other colours too, so a model's arms never name a dress.
_SKIN_WEIGHT = 0.15
_SKIN_SHARE_ALONE = 0.7  # ... unless the object is mostly skin-toned (a tan bag, a beige coat): then it is its colour
# A pixel this far (Lab units) into a blend of the colours on either side of it weighs half: the thumbnail mixes a
# print's colours, and a garment's edge with what is beside it, into colours that are in neither.
_BLEND_CONTRAST = 8.0
# The centre of the picture weighs fully, its corners about a third: products are framed in the middle.
_CENTRE_SPREAD = 0.45
# Folds and shadows: a pixel at least this fraction as light as the lightest object pixel around it (a window this
# wide) is the same colour in shade, and is lifted to that light; a darker one is another colour (navy on white).
_SHADE_RATIO = 0.55
_SHADE_WINDOW = 15
PALETTE_SIZE = 5
_KMEANS_ROUNDS = 5
# Palette colours closer than this (delta E 2000) are one colour; shares below the floor are noise.
_SAME_COLOUR = 7.0
_SHARE_FLOOR = 0.04
# How fast two colours stop matching (delta E 2000).
_MATCH_FADE = 10.0
# An asked colour is shared when it covers this fraction of its part (1 / number of colours asked).
_SHARED_PART = 0.3
# Colours named with their share: the two or three main ones.
_NAMED_SHARE = 0.1
NAMED_COLOURS = 3


@dataclass(frozen=True)
class PaletteColour:
    lab: tuple[float, float, float]
    share: float


Palette = tuple[PaletteColour, ...]


@dataclass(frozen=True)
class ColourTarget:
    """The colour a search asks for: the words the shopper typed, or the palette of a picture or product."""

    words: ColourWords | None = None
    palette: Palette | None = None


@dataclass(frozen=True)
class ColourMatch:
    score: float  # in [0, 1]
    shared: str | None  # the colour the query and the product have in common, as people name it


@dataclass(frozen=True)
class _Pixels:
    lab: np.ndarray  # (n, 3)
    weights: np.ndarray  # (n,)


def colour_palette(image: Image.Image) -> Palette:
    """The product's dominant colours with their shares of the object, largest first."""
    # reducing_gap: a box reduction first, then bilinear, so a large photo costs little more than a small one.
    rgb = image if image.mode == "RGB" else image.convert("RGB")  # convert copies even an RGB image
    thumb = rgb.resize(_THUMB, Image.Resampling.BILINEAR, reducing_gap=2.0)
    lab = rgb2lab(np.asarray(thumb, dtype=np.float64) / 255.0)
    weights = _object_weights(lab)
    skin = _skin_like(lab.reshape(-1, 3))  # before the shade is lifted: skin is judged as photographed
    lit = _out_of_shade(lab, weights > 0.5)
    weights = weights * _purity(lit)
    pixels = _Pixels(lit.reshape(-1, 3), weights.reshape(-1) * _centre_weights(lab.shape[:2]))
    return _palette_of(_without_skin(pixels, skin))


def palette_payload(palette: Palette) -> list[list[float]]:
    return [[*(round(v, 1) for v in colour.lab), round(colour.share, 3)] for colour in palette]


def palette_from_payload(value: Any) -> Palette | None:
    """The stored palette; None for a payload written before palettes (or a malformed one)."""
    if not isinstance(value, list) or not value:
        return None
    try:
        rows = [[float(v) for v in row] for row in value]
    except (TypeError, ValueError):
        return None
    if any(len(row) != 4 for row in rows):
        return None
    return tuple(PaletteColour((row[0], row[1], row[2]), row[3]) for row in rows)


def stored_palette(image_payload: dict[str, Any]) -> Palette | None:
    return palette_from_payload(image_payload.get("colour_palette"))


def mix_palettes(palettes: Sequence[Palette]) -> Palette:
    """Several pictures' colours as one palette, each picture counting equally."""
    colours = [PaletteColour(colour.lab, colour.share / len(palettes)) for palette in palettes for colour in palette]
    return _merged(colours)


def text_target(text: str) -> ColourTarget | None:
    words = colour_words_in(text)
    return ColourTarget(words=words) if words is not None else None


@lru_cache(maxsize=16384)  # ranking and then the explanation ask for the same pair
def colour_match(target: ColourTarget, palette: Palette) -> ColourMatch:
    if target.words is not None:
        return _words_match(target.words, palette)
    return _palettes_match(target.palette or (), palette)


def _words_match(words: ColourWords, palette: Palette) -> ColourMatch:
    """How much of the product is each asked colour: all asked colours should be there ("black and white": half
    each is a full match), or any one of them ("red or blue")."""
    lab, shares = _arrays(palette)
    coverage = [float(np.dot(shares, phrase_membership(lab, phrase))) for phrase in words.phrases]
    if words.any_of:
        score = max(coverage)
        shared = [words.phrases[int(np.argmax(coverage))].label] if score >= 0.5 else []
    else:
        fulfilled = [min(1.0, c * len(coverage)) for c in coverage]
        score = sum(fulfilled) / len(fulfilled)
        # A print covering a sixth of a black-and-white product still makes it black and white.
        shared = [phrase.label for phrase, f in zip(words.phrases, fulfilled, strict=True) if f >= _SHARED_PART]
    return ColourMatch(_unit(score), " and ".join(shared) or None)


def _palettes_match(query: Palette, product: Palette) -> ColourMatch:
    """Half perceptual (each colour's nearest counterpart, both ways), half shared basic families, which names
    the colour they have in common."""
    if not query or not product:
        return ColourMatch(0.0, None)
    query_lab, query_shares = _arrays(query)
    product_lab, product_shares = _arrays(product)
    closeness = np.exp(-deltaE_ciede2000(query_lab[:, None, :], product_lab[None, :, :]) ** 2
                       / (2 * _MATCH_FADE ** 2))
    perceptual = (float(np.dot(query_shares, closeness.max(axis=1)))
                  + float(np.dot(product_shares, closeness.max(axis=0)))) / 2
    product_families = family_posterior(product_lab)
    query_families = query_shares @ family_posterior(query_lab)
    in_common = np.minimum(query_families, product_shares @ product_families)
    score = 0.5 * perceptual + 0.5 * float(in_common.sum())
    family = int(np.argmax(in_common))
    shared = None
    if in_common[family] >= 0.25:
        # The product's own colour of that family that weighs most, by the name people give it.
        colour = int(np.argmax(product_shares * product_families[:, family]))
        shared = name_colours(product_lab[colour:colour + 1])[0].name
    return ColourMatch(_unit(score), shared)


def prepare_palettes(palettes: Sequence[Palette]) -> None:
    """Names the colours of many palettes in one pass (a page of candidates), so each match after is arithmetic."""
    colours = [colour.lab for palette in palettes for colour in palette]
    if colours:
        family_posterior(np.asarray(colours))


def palette_names(palette: Palette) -> list[dict[str, Any]]:
    """The two or three main colours as people name them, with their shares ("red" 0.62, "white" 0.31)."""
    if not palette:
        return []
    lab, shares = _arrays(palette)
    named: dict[str, dict[str, Any]] = {}
    for colour, name, share in zip(palette, name_colours(lab), shares, strict=True):
        entry = named.setdefault(name.name, {"name": name.name, "family": name.family, "share": 0.0,
                                             "hex": lab_to_hex(colour.lab)})
        entry["share"] += float(share)
    ranked = sorted(named.values(), key=lambda entry: -entry["share"])
    kept = [entry for entry in ranked if entry["share"] >= _NAMED_SHARE][:NAMED_COLOURS] or ranked[:1]
    return [entry | {"share": round(entry["share"], 3)} for entry in kept]


def palette_histogram(palette: Palette) -> list[float]:
    """The palette as the 64-bin Lab histogram (4 x 4 x 4) that payloads held before palettes."""
    histogram = np.zeros((4, 4, 4))
    for colour in palette:
        lightness, a, b = colour.lab
        histogram[_bin(lightness, 0, 25), _bin(a, -80, 40), _bin(b, -80, 40)] += colour.share
    return [round(float(v), 4) for v in histogram.ravel()]


def _bin(value: float, low: float, width: float) -> int:
    return min(3, max(0, int((value - low) // width)))


def aspect_ratio(width: int, height: int) -> float:
    return round(width / height, 4)


def _arrays(palette: Palette) -> tuple[np.ndarray, np.ndarray]:
    lab = np.asarray([colour.lab for colour in palette], dtype=np.float64).reshape(-1, 3)
    shares = np.asarray([colour.share for colour in palette], dtype=np.float64)
    return lab, shares / max(float(shares.sum()), 1e-9)


def _unit(value: float) -> float:
    return min(1.0, max(0.0, value))


def _object_weights(lab: np.ndarray) -> np.ndarray:
    border = np.concatenate([lab[:_BORDER].reshape(-1, 3), lab[-_BORDER:].reshape(-1, 3),
                             lab[:, :_BORDER].reshape(-1, 3), lab[:, -_BORDER:].reshape(-1, 3)])
    background = np.median(border, axis=0)
    if np.median(deltaE_cie76(border, background)) > _PLAIN_BORDER_SPREAD:
        return np.ones(lab.shape[:2])
    distance = deltaE_cie76(lab, background)
    # Inside the outline, not on it: the outline's pixels blend object and background.
    inside = binary_erosion(binary_fill_holes(distance > _OUTLINE_DISTANCE))
    weights = np.maximum(np.clip(distance / _OBJECT_DISTANCE, 0.0, 1.0), inside.astype(np.float64))
    # A plain image with no object at all: every pixel is the "object".
    return weights if weights.sum() > 0.02 * weights.size else np.ones_like(weights)


def _out_of_shade(lab: np.ndarray, on_object: np.ndarray) -> np.ndarray:
    """The object as if evenly lit: each pixel in shade takes the lightness of the lit fabric beside it, and its
    chroma grows by the same factor (shade darkens and greys a colour together)."""
    lightness = lab[..., 0]
    # The object's rim blends with the background, and a speck of noise is not lit fabric: neither sets the light.
    inner = binary_erosion(on_object)
    lit = maximum_filter(np.where(inner, median_filter(lightness, size=3), 0.0), size=_SHADE_WINDOW)
    ratio = np.divide(lightness, lit, out=np.ones_like(lightness), where=lit > 1.0)
    in_shade = on_object & (ratio >= _SHADE_RATIO) & (ratio < 1.0)
    gain = np.where(in_shade, 1.0 / np.maximum(ratio, _SHADE_RATIO), 1.0)
    result: np.ndarray = np.stack([np.where(in_shade, lit, lightness), lab[..., 1] * gain, lab[..., 2] * gain],
                                  axis=-1)
    return result


def _purity(lab: np.ndarray) -> np.ndarray:
    """How little each pixel looks like a blend: a pixel halfway between its neighbours on either side, where those
    differ (the thumbnail's mix of a print's two colours, or of a garment's edge and skin), is in neither colour and
    weighs little. A sharp edge, a thin stripe's own pixels and uniform texture are not blends."""
    lab = lab.astype(np.float32)
    padded = np.pad(lab, ((1, 1), (1, 1), (0, 0)), mode="edge")
    height, width = lab.shape[:2]
    blend = np.zeros((height, width), dtype=np.float32)
    for before, after in (((0, 1), (2, 1)), ((1, 0), (1, 2))):
        first = padded[before[0]:before[0] + height, before[1]:before[1] + width]
        second = padded[after[0]:after[0] + height, after[1]:after[1] + width]
        step, off_middle = first - second, lab - (first + second) * 0.5
        apart = np.sqrt(np.einsum("ijk,ijk->ij", step, step)) * 0.5
        blend = np.maximum(blend, apart - np.sqrt(np.einsum("ijk,ijk->ij", off_middle, off_middle)))
    purity: np.ndarray = (1.0 / (1.0 + (np.maximum(blend, 0.0) / _BLEND_CONTRAST) ** 2)).astype(np.float64)
    return purity


def _centre_weights(shape: tuple[int, ...]) -> np.ndarray:
    rows, cols = (np.linspace(-0.5, 0.5, size) for size in shape[:2])
    squared = rows[:, None] ** 2 + cols[None, :] ** 2
    weights: np.ndarray = np.exp(-squared / (2 * _CENTRE_SPREAD ** 2)).reshape(-1)
    return weights


def _skin_like(lab: np.ndarray) -> np.ndarray:
    """Skin tones of every complexion: warm hue (orange-red to yellow-orange), moderate chroma, not too dark."""
    lightness, chroma = lab[:, 0], np.hypot(lab[:, 1], lab[:, 2])
    hue = np.degrees(np.arctan2(lab[:, 2], lab[:, 1]))
    mask: np.ndarray = (lightness > 20) & (lightness < 88) & (chroma > 8) & (chroma < 50) & (hue > 25) & (hue < 80)
    return mask


def _without_skin(pixels: _Pixels, skin: np.ndarray) -> _Pixels:
    total = float(pixels.weights.sum())
    if total <= 0 or float(pixels.weights[skin].sum()) / total >= _SKIN_SHARE_ALONE:
        return pixels
    return _Pixels(pixels.lab, np.where(skin, pixels.weights * _SKIN_WEIGHT, pixels.weights))


def _palette_of(pixels: _Pixels) -> Palette:
    """Weighted k-means in Lab, seeded deterministically from the heaviest cells of a coarse grid."""
    counted = pixels.weights > 0.02 * float(pixels.weights.max())  # the background drops out
    lab, weights = pixels.lab[counted], pixels.weights[counted]
    centres = _seeds(lab, weights)
    for _ in range(_KMEANS_ROUNDS):
        nearest = _nearest_centre(lab, centres)
        mass = np.bincount(nearest, weights, minlength=len(centres))
        sums = np.stack([np.bincount(nearest, weights * lab[:, c], minlength=len(centres)) for c in range(3)], axis=1)
        moved = mass > 0
        centres[moved] = sums[moved] / mass[moved, None]
    mass = np.bincount(_nearest_centre(lab, centres), weights, minlength=len(centres))
    shares = mass / max(float(mass.sum()), 1e-9)
    return _merged([PaletteColour((float(c[0]), float(c[1]), float(c[2])), float(s))
                    for c, s in zip(centres, shares, strict=True) if s > 0])


def _nearest_centre(lab: np.ndarray, centres: np.ndarray) -> np.ndarray:
    squared = (centres ** 2).sum(axis=1)[None, :] - 2.0 * lab @ centres.T  # |x|^2 is the same for every centre
    nearest: np.ndarray = np.argmin(squared, axis=1)
    return nearest


def _seeds(lab: np.ndarray, weights: np.ndarray) -> np.ndarray:
    cells = np.floor(np.clip(lab, [0, -100, -100], [99.9, 99.9, 99.9]) / [12.5, 20.0, 20.0]).astype(int)
    keys = cells[:, 0] * 10_000 + (cells[:, 1] + 5) * 100 + (cells[:, 2] + 5)
    unique, inverse = np.unique(keys, return_inverse=True)
    mass = np.bincount(inverse, weights, minlength=len(unique))
    heaviest = np.argsort(-mass, kind="stable")[:PALETTE_SIZE + 2]
    sums = np.stack([np.bincount(inverse, weights * lab[:, c], minlength=len(unique)) for c in range(3)], axis=1)
    seeds: np.ndarray = sums[heaviest] / np.maximum(mass[heaviest], 1e-12)[:, None]
    return seeds


def _merged(colours: list[PaletteColour]) -> Palette:
    """Near-identical colours joined (share-weighted), slivers dropped, the largest few kept, shares summing to 1."""
    colours = sorted(colours, key=lambda c: -c.share)
    lab = np.asarray([c.lab for c in colours], dtype=np.float64).reshape(-1, 3)
    apart = deltaE_ciede2000(lab[:, None, :], lab[None, :, :])
    merged: list[PaletteColour] = []
    joined_to: list[int] = []  # for each colour, the merged colour it went into
    for index, colour in enumerate(colours):
        same = next((joined_to[i] for i in range(index) if apart[i, index] < _SAME_COLOUR), None)
        if same is None:
            joined_to.append(len(merged))
            merged.append(colour)
            continue
        joined_to.append(same)
        kept = merged[same]
        share = kept.share + colour.share
        mean = (np.asarray(kept.lab) * kept.share + np.asarray(colour.lab) * colour.share) / share
        merged[same] = PaletteColour((float(mean[0]), float(mean[1]), float(mean[2])), share)
    kept_colours = [c for c in sorted(merged, key=lambda c: -c.share) if c.share >= _SHARE_FLOOR][:PALETTE_SIZE]
    kept_colours = kept_colours or merged[:1]
    total = sum(c.share for c in kept_colours) or 1.0
    return tuple(PaletteColour((round(c.lab[0], 1), round(c.lab[1], 1), round(c.lab[2], 1)), round(c.share / total, 3))
                 for c in kept_colours)

