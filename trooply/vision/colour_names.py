"""Colour names as people give them, and the colour phrases shoppers type.

The model is a table fitted at build time (`bench/fit_colour_names.py` writes `colour_names.json`, about 9 KB) from
the XKCD colour survey (public domain, CC0): survey colours in CIE Lab, each with the basic family its name spells
("forest green", "bluegreen" -> green), and for each shopper word (navy, burgundy, teal, ...) the survey colours
named with it. A colour's family is a soft vote among the chromatic families, in CAM16-UCS (Li et al. 2017, a
space where distance follows perceived difference more evenly than in Lab): a Gaussian region per family, the nearest
survey colours' vote, or a mix of the two; a near-neutral colour (by its chroma) is named by lightness, between
bounds fitted on the ISCC-NBS neutral categories and the survey's greys. Which of these, and their settings, were
chosen by cross-validation on the fitted names and are stored with the table. A shopper word is a region around the
colours people gave that word.
"""

import json
import math
import re
import threading
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from skimage.color import deltaE_ciede2000, lab2rgb

# CIEDE2000 runs only against this many survey colours nearest in plain Lab distance (see `_posterior`).
_SHORTLIST = 100
# A shopper word names a colour this close (delta E 2000) to one of its survey colours; beyond, the family does.
_TERM_NAMES_WITHIN = 6.0
# ... when the vote gives the word's family at least this share; else only a colour this close to one of the word's
# own (the survey's beige is beige, whichever family people would file it under).
_TERM_PLAUSIBLE = 0.3
_TERM_OWN_COLOUR = 2.0
# Words a shopper may type that a merchandiser would not name a product with ("scarlet" is a red).
_QUERY_ONLY = frozenset({"scarlet", "crimson", "emerald", "cobalt", "violet", "cyan", "indigo"})
# How fast a colour leaves a shopper word's region (delta E 2000).
_TERM_FADE = 10.0
# Modifiers move the target away from the word's typical lightness or chroma (units of L* or C*).
_MODIFIER_SOFTNESS = 6.0
LIGHTER = frozenset({"light", "pale", "pastel", "baby", "soft"})
DARKER = frozenset({"dark", "deep"})
BRIGHTER = frozenset({"bright", "vivid", "hot", "neon", "electric"})
MUTED = frozenset({"muted", "dusty", "dull", "pastel"})
MODIFIERS = LIGHTER | DARKER | BRIGHTER | MUTED
_SYNONYMS = {"gray": "grey"}
# A colour word that makes a known compound with the word after it, or before it, names a thing, not a colour: "olive
# oil", "face cream", "charcoal mask", "orange juice". Only where the compound is common in shops' catalogues; an
# unknown pairing stays a colour ("olive jacket"), and so does a material that is its colour ("sterling silver").
_COMPOUND_AFTER = {
    "olive": frozenset({"oil", "oils", "tree", "trees", "wood", "pits", "tapenade"}),
    "charcoal": frozenset({"mask", "masks", "grill", "briquettes", "filter", "filters", "toothpaste", "powder", "scrub",
                           "soap", "bbq", "barbecue", "pencil", "pencils", "teeth", "tablets", "capsules"}),
    "cream": frozenset({"cheese", "liqueur", "cleanser", "puff", "puffs"}),
    "mint": frozenset({"tea", "gum", "leaves", "sauce", "candy", "candies", "mouthwash", "toothpaste", "extract",
                       "oil", "plant", "chocolate", "chocolates"}),
    "lavender": frozenset({"oil", "essential", "plant", "plants", "seeds", "honey", "tea", "water", "scent",
                           "fragrance", "sachet", "sachets", "soap"}),
    "salmon": frozenset({"fillet", "fillets", "steak", "steaks", "oil", "roe", "food"}),
    "peach": frozenset({"tea", "juice", "jam", "fruit", "tree", "schnapps"}),
    "coral": frozenset({"reef", "reefs", "frag", "frags"}),
    "rust": frozenset({"remover", "converter", "inhibitor", "proofing", "treatment"}),
    "mustard": frozenset({"sauce", "seed", "seeds", "powder", "oil", "jar"}),
    "tan": frozenset({"lotion", "oil", "spray", "mousse", "accelerator", "drops", "mitt", "remover"}),
    "camel": frozenset({"milk", "hair"}),
    "orange": frozenset({"juice", "marmalade", "oil", "peel", "tree", "squash"}),
    "green": frozenset({"tea", "beans", "juice", "smoothie", "powder"}),
    "black": frozenset({"pepper", "tea", "coffee", "beans", "friday", "seed", "seeds"}),
    "red": frozenset({"wine", "wines", "onion", "onions", "pepper", "peppers", "lentils"}),
    "white": frozenset({"wine", "wines", "rice", "vinegar", "noise", "sugar", "bread", "chocolate", "tea"}),
    "brown": frozenset({"sugar", "rice", "bread", "sauce"}),
}
_COMPOUND_BEFORE = {
    "cream": frozenset({"face", "hand", "eye", "night", "day", "body", "foot", "sun", "shaving", "ice", "sour",
                        "whipped", "hair", "nappy", "diaper", "moisturising", "moisturizing", "barrier", "heavy",
                        "coffee", "double", "single", "clotted", "hemorrhoid", "antifungal", "skin"}),
    "charcoal": frozenset({"activated", "lump", "bamboo"}),
    "tan": frozenset({"self", "fake", "sun", "spray", "instant", "gradual"}),
    "mint": frozenset({"spear", "pepper", "breath"}),
    "orange": frozenset({"blood", "mandarin", "navel"}),
}
# Family posteriors of colours seen before (a catalogue's palettes come back search after search), oldest out first.
_POSTERIORS: dict[tuple[float, ...], np.ndarray] = {}
_POSTERIORS_KEPT = 50_000
_POSTERIORS_LOCK = threading.Lock()
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class NamingParameters:
    """The naming model's settings, chosen at fit time (`bench/fit_colour_names.py`) and stored in the table."""

    neighbours: int  # nearest survey colours that vote on a family
    vote_fade: float  # how fast a vote fades with distance (delta E 2000)
    neutral_chroma: tuple[float, float]  # below the first, a colour is neutral (named by lightness); above, voted
    neutral_lightness: tuple[float, float]  # neutral: black below the first, white above the second
    neutral_softness: float  # how soft those lightness bounds are (units of L*)
    # So close (delta E 2000) to a colour of a shopper word filed under one of these families that the word names it,
    # and its family, whatever the vote: the survey calls a cream "pale yellow", a merchandiser calls it cream.
    term_decides_within: float
    term_decides_families: frozenset[str]
    # The space the vote works in: "cielab" (distances by CIEDE2000) or "cam16ucs" (CAM16-UCS, Euclidean distances).
    vote_space: str = "cielab"
    # The share of the family posterior given by a Gaussian region per family (in the vote's space, weighted by how
    # many survey colours the family has), the rest by the nearest colours' vote; and the spread added to each
    # family's covariance (squared units of the space), so a family of few colours is not a needle.
    gaussian_share: float = 0.0
    gaussian_spread: float = 0.0


@dataclass(frozen=True)
class FamilyRegions:
    """A Gaussian region per family in the vote's space; a family of fewer than 4 colours has none."""

    means: np.ndarray  # (families, 3)
    precisions: np.ndarray  # inverse covariances, (families, 3, 3)
    log_weights: np.ndarray  # log prior share minus half the log determinant; -inf where no region, (families,)


@dataclass(frozen=True)
class NamingModel:
    parameters: NamingParameters
    families: tuple[str, ...]
    points: np.ndarray  # survey colours in Lab, (n, 3)
    vote_points: np.ndarray  # the same in the vote's space
    regions: "FamilyRegions"
    point_families: np.ndarray  # index into families, (n,)
    terms: dict[str, np.ndarray]  # shopper word -> its survey colours in Lab
    term_points: np.ndarray  # every shopper word's colours together, (m, 3)
    term_of_point: tuple[str, ...]  # the word of each row of term_points
    term_family: dict[str, str]  # the basic family a merchandiser files a shopper word under
    reference: dict[str, tuple[float, float]]  # word -> median lightness and chroma of its colours


@dataclass(frozen=True)
class ColourName:
    name: str  # the shopper word or basic family that names it ("navy")
    family: str  # its basic family ("blue")


@dataclass(frozen=True)
class ColourPhrase:
    """One colour a shopper asked for: a word and its modifiers ("light blue", "navy", "off white")."""

    word: str
    modifiers: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return " ".join((*self.modifiers, self.word))


@dataclass(frozen=True)
class ColourWords:
    """The colours of a query: all of them together ("black and white"), or any one ("red or blue")."""

    phrases: tuple[ColourPhrase, ...]
    any_of: bool = False


@cache
def naming_model() -> NamingModel:
    return build_model(json.loads((Path(__file__).with_name("colour_names.json")).read_text()))


def build_model(table: dict[str, Any]) -> NamingModel:
    """The model of a fitted table (the shipped one, or one the fit script validates)."""
    fitted = table["parameters"]
    parameters = NamingParameters(
        neighbours=int(fitted["neighbours"]), vote_fade=float(fitted["vote_fade"]),
        neutral_chroma=(float(fitted["neutral_chroma"][0]), float(fitted["neutral_chroma"][1])),
        neutral_lightness=(float(fitted["neutral_lightness"][0]), float(fitted["neutral_lightness"][1])),
        neutral_softness=float(fitted["neutral_softness"]),
        term_decides_within=float(fitted["term_decides"]["within"]),
        term_decides_families=frozenset(fitted["term_decides"]["families"]),
        vote_space=str(fitted.get("vote_space", "cielab")), gaussian_share=float(fitted.get("gaussian_share", 0.0)),
        gaussian_spread=float(fitted.get("gaussian_spread", 0.0)))
    points = np.asarray(table["family_points"], dtype=np.float64)
    vote_points = _in_vote_space(points[:, :3], parameters.vote_space)
    rows = {term: np.asarray(labs, dtype=np.float64).reshape(-1, 3) for term, labs in table["terms"].items()}
    terms = {term: labs for term, labs in rows.items() if term not in _QUERY_ONLY}
    query_only = {term: rows[term] for term in _QUERY_ONLY}
    return NamingModel(
        parameters=parameters, families=tuple(table["families"]), points=points[:, :3],
        vote_points=vote_points,
        regions=_family_regions(vote_points, points[:, 3].astype(int), len(table["families"]),
                                parameters.gaussian_spread),
        point_families=points[:, 3].astype(int),
        terms=terms | query_only, term_points=np.concatenate(list(terms.values())),
        term_of_point=tuple(term for term, labs in terms.items() for _ in range(len(labs))),
        term_family=table["term_families"],
        reference={term: (ref[0], ref[1]) for term, ref in table["reference"].items()})


@cache
def colour_vocabulary() -> frozenset[str]:
    """Every single word that names a colour in a query (multi-word terms by their last word)."""
    model = naming_model()
    return frozenset({*model.families, *_SYNONYMS, *(term.split()[-1] for term in model.terms)})


def family_posterior(lab: np.ndarray) -> np.ndarray:
    """How likely people are to call each colour (rows of Lab) each basic family: (n, families), rows sum to 1."""
    model = naming_model()
    keys = [tuple(round(float(v), 1) for v in row) for row in np.atleast_2d(lab)]
    if not keys:
        return np.zeros((0, len(model.families)))
    with _POSTERIORS_LOCK:
        missing = list(dict.fromkeys(key for key in keys if key not in _POSTERIORS))
        if missing:  # one vectorised pass for the colours not seen before: the per-call cost dominates
            _POSTERIORS.update(zip(missing, _posterior(model, np.asarray(missing)), strict=True))
        rows = np.stack([_POSTERIORS[key] for key in keys])
        while len(_POSTERIORS) > _POSTERIORS_KEPT:
            _POSTERIORS.pop(next(iter(_POSTERIORS)))
    return rows


def _posterior(model: NamingModel, lab: np.ndarray) -> np.ndarray:
    lab = np.atleast_2d(np.asarray(lab, dtype=np.float64))
    fitted = model.parameters
    posterior = _vote(model, lab)
    neutral = _neutral_posterior(lab, model)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    low, high = fitted.neutral_chroma
    neutrality = np.clip((high - chroma) / (high - low), 0.0, 1.0)[:, None]
    result: np.ndarray = neutrality * neutral + (1 - neutrality) * posterior
    return result


def _vote(model: NamingModel, lab: np.ndarray) -> np.ndarray:
    """Family shares: the Gaussian regions' and the nearest survey colours' votes, mixed as the table says."""
    share = model.parameters.gaussian_share
    if share >= 1.0:
        return _region_vote(model, lab)
    nearest_vote = _nearest_vote(model, lab)
    return nearest_vote if share <= 0.0 else share * _region_vote(model, lab) + (1 - share) * nearest_vote


def _region_vote(model: NamingModel, lab: np.ndarray) -> np.ndarray:
    regions = model.regions
    offsets = _in_vote_space(lab, model.parameters.vote_space)[:, None, :] - regions.means[None, :, :]
    log_likelihood = regions.log_weights - 0.5 * np.einsum("nfi,fij,nfj->nf", offsets, regions.precisions, offsets)
    likelihood = np.exp(log_likelihood - log_likelihood.max(axis=1, keepdims=True))
    result: np.ndarray = likelihood / likelihood.sum(axis=1, keepdims=True)
    return result


def _family_regions(points: np.ndarray, families: np.ndarray, count: int, spread: float) -> FamilyRegions:
    means, precisions, log_weights = np.zeros((count, 3)), np.tile(np.eye(3), (count, 1, 1)), np.full(count, -np.inf)
    for family in range(count):
        members = points[families == family]
        if len(members) < 4:
            continue
        covariance = np.cov(members.T) + spread * np.eye(3)
        means[family], precisions[family] = members.mean(axis=0), np.linalg.inv(covariance)
        log_weights[family] = math.log(len(members) / len(points)) - 0.5 * math.log(np.linalg.det(covariance))
    return FamilyRegions(means, precisions, log_weights)


def _nearest_vote(model: NamingModel, lab: np.ndarray) -> np.ndarray:
    """The family shares of the nearest survey colours' vote, each vote fading with its distance."""
    near, nearest = _nearest_points(model, lab)
    # Measured from the nearest one, so a colour far from every survey colour still gets a vote.
    votes = np.exp(-(near ** 2 - near[:, :1] ** 2) / (2 * model.parameters.vote_fade ** 2))
    posterior = np.zeros((len(lab), len(model.families)))
    np.add.at(posterior, (np.arange(len(lab))[:, None], model.point_families[nearest]), votes)
    result: np.ndarray = posterior / posterior.sum(axis=1, keepdims=True)
    return result


def _nearest_points(model: NamingModel, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distances to, and indices of, each colour's nearest survey colours in the vote's space, nearest first."""
    count = model.parameters.neighbours
    if model.parameters.vote_space == "cam16ucs":
        distances = np.sqrt(((_cam16_ucs(lab)[:, None, :] - model.vote_points[None, :, :]) ** 2).sum(axis=2))
        order = np.argsort(distances, axis=1)[:, :count]
        return np.take_along_axis(distances, order, axis=1), order
    # CIEDE2000 costs ~1 us a pair: measured only against the survey colours nearest in plain Lab distance,
    # a margin wide enough to hold the nearest few by CIEDE2000.
    plain = ((lab[:, None, :] - model.points[None, :, :]) ** 2).sum(axis=2)
    shortlist = np.argpartition(plain, _SHORTLIST, axis=1)[:, :_SHORTLIST]
    distances = deltaE_ciede2000(lab[:, None, :], model.points[shortlist])
    order = np.argsort(distances, axis=1)[:, :count]
    return np.take_along_axis(distances, order, axis=1), np.take_along_axis(shortlist, order, axis=1)


def _in_vote_space(lab: np.ndarray, space: str) -> np.ndarray:
    return _cam16_ucs(lab) if space == "cam16ucs" else lab


# CAM16 (Li et al. 2017) under sRGB's reference viewing: D65 white, adapting luminance 64 lux / pi x 0.2 (cd/m2), a
# grey background of Y 20, average surround.
_M16 = np.array([[0.401288, 0.650173, -0.051461], [-0.250268, 1.204414, 0.045854], [-0.002079, 0.048952, 0.953127]])
_WHITE = np.array([95.047, 100.0, 108.883])
_ADAPTING = 64 / math.pi * 0.2


@cache
def _cam16_viewing(adapting: float) -> tuple[np.ndarray, float, float, float, float, float]:
    """CAM16's constants for the viewing conditions: per-channel adaptation, F_L, N_bb, c z, A_w, n."""
    background, surround, c = 20.0, 1.0, 0.69
    white_rgb = _M16 @ _WHITE
    degree = float(np.clip(surround * (1 - (1 / 3.6) * math.exp((-adapting - 42) / 92)), 0.0, 1.0))
    adaptation = degree * 100.0 / white_rgb + 1 - degree
    k = 1 / (5 * adapting + 1)
    f_l = 0.2 * k ** 4 * (5 * adapting) + 0.1 * (1 - k ** 4) ** 2 * (5 * adapting) ** (1 / 3)
    n = background / 100.0
    n_bb = 0.725 * n ** -0.2
    z = 1.48 + math.sqrt(n)
    white_a = _cam16_compress(adaptation * white_rgb, f_l)
    a_w = float((2 * white_a[0] + white_a[1] + 0.05 * white_a[2] - 0.305) * n_bb)
    return adaptation, f_l, n_bb, z * c, a_w, n


def _cam16_compress(rgb: np.ndarray, f_l: float) -> np.ndarray:
    scaled = (f_l * np.abs(rgb) / 100.0) ** 0.42
    result: np.ndarray = np.sign(rgb) * 400.0 * scaled / (scaled + 27.13) + 0.1
    return result


def _lab_to_xyz(lab: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) to XYZ scaled to Y = 100 for white; an out-of-gamut Lab (a query's target) stays as it is."""
    fy = (lab[:, 0] + 16) / 116
    f = np.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], axis=1)
    linear = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29))
    result: np.ndarray = linear * _WHITE
    return result


def _cam16_ucs(lab: np.ndarray, adapting: float = _ADAPTING) -> np.ndarray:
    """CIE Lab (D65) to CAM16-UCS J', a', b' (Li et al. 2017), where Euclidean distance follows perceived difference
    more evenly than Lab's."""
    adaptation, f_l, n_bb, cz, a_w, n = _cam16_viewing(adapting)
    xyz = _lab_to_xyz(np.atleast_2d(lab))
    rgb = _cam16_compress((xyz @ _M16.T) * adaptation, f_l)
    red, green, blue = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    a = red - 12 * green / 11 + blue / 11
    b = (red + green - 2 * blue) / 9
    hue = np.arctan2(b, a)
    achromatic = np.maximum((2 * red + green + 0.05 * blue - 0.305) * n_bb, 0.0)
    lightness = 100.0 * (achromatic / a_w) ** cz
    eccentricity = 0.25 * (np.cos(hue + 2) + 3.8)
    t = (50000 / 13 * n_bb * eccentricity * np.hypot(a, b)) / (red + green + 21 / 20 * blue)
    colourfulness = t ** 0.9 * np.sqrt(lightness / 100) * (1.64 - 0.29 ** n) ** 0.73 * f_l ** 0.25
    m = np.log1p(0.0228 * colourfulness) / 0.0228
    return np.stack([1.7 * lightness / (1 + 0.007 * lightness), m * np.cos(hue), m * np.sin(hue)], axis=1)


def _neutral_posterior(lab: np.ndarray, model: NamingModel) -> np.ndarray:
    families, (dark, light) = model.families, model.parameters.neutral_lightness
    softness = model.parameters.neutral_softness
    black = _sigmoid((dark - lab[:, 0]) / softness)
    white = _sigmoid((lab[:, 0] - light) / softness)
    posterior = np.zeros((len(lab), len(families)))
    posterior[:, families.index("black")] = black
    posterior[:, families.index("white")] = white
    posterior[:, families.index("grey")] = np.clip(1.0 - black - white, 0.0, 1.0)
    return posterior


def name_colours(lab: np.ndarray) -> list[ColourName]:
    """The name people would give each colour: a shopper word when the colour sits in its region, else the family."""
    return [_name_of(tuple(round(float(v), 1) for v in row)) for row in np.atleast_2d(lab)]


@lru_cache(maxsize=8192)  # stored palettes repeat across searches: name each colour once
def _name_of(lab: tuple[float, ...]) -> ColourName:
    colour = np.asarray([lab])
    return _named(naming_model(), colour, family_posterior(colour)[0])


def name_with(model: NamingModel, lab: np.ndarray) -> tuple[list[ColourName], np.ndarray]:
    """`name_colours` and `family_posterior` under any fitted model, uncached: the fit script validates candidate
    tables with it."""
    lab = np.atleast_2d(np.asarray(lab, dtype=np.float64))
    posteriors = _posterior(model, lab)
    return [_named(model, lab[i:i + 1], posterior) for i, posterior in enumerate(posteriors)], posteriors


def _named(model: NamingModel, colour: np.ndarray, posterior: np.ndarray) -> ColourName:
    """The family the vote gives, named by a shopper word when the colour sits in the word's region and the vote
    finds the word's family plausible: #0000ff is blue, not the "blue violet" nearby; a beige stays beige even where
    people would file it under yellow rather than brown."""
    family = model.families[int(np.argmax(posterior))]
    distances = deltaE_ciede2000(colour, model.term_points)
    fitted = model.parameters
    deciding = np.asarray([model.term_family[term] in fitted.term_decides_families for term in model.term_of_point])
    nearest = int(np.argmin(np.where(deciding, distances, np.inf)))
    if deciding.any() and distances[nearest] <= fitted.term_decides_within:
        term = model.term_of_point[nearest]
        return ColourName(term, model.term_family[term])
    plausible = {name for name, share in zip(model.families, posterior, strict=True) if share >= _TERM_PLAUSIBLE}
    reach = np.where([model.term_family[term] in plausible for term in model.term_of_point],
                     _TERM_NAMES_WITHIN, _TERM_OWN_COLOUR)
    nearest = int(np.argmin(distances - reach))
    return ColourName(model.term_of_point[nearest] if distances[nearest] <= reach[nearest] else family, family)


def phrase_membership(lab: np.ndarray, phrase: ColourPhrase) -> np.ndarray:
    """How well each colour (rows of Lab) answers the phrase, in [0, 1]."""
    model = naming_model()
    lab = np.atleast_2d(np.asarray(lab, dtype=np.float64))
    if phrase.word in model.families:
        membership = family_posterior(lab)[:, model.families.index(phrase.word)]
    else:
        nearest = deltaE_ciede2000(lab[:, None, :], model.terms[phrase.word][None, :, :]).min(axis=1)
        membership = np.exp(-(nearest ** 2) / (2 * _TERM_FADE ** 2))
    lightness, chroma = lab[:, 0], np.hypot(lab[:, 1], lab[:, 2])
    typical_lightness, typical_chroma = model.reference[phrase.word]
    for modifier in phrase.modifiers:
        if modifier in LIGHTER:
            membership = membership * _sigmoid((lightness - typical_lightness) / _MODIFIER_SOFTNESS)
        if modifier in DARKER:
            membership = membership * _sigmoid((typical_lightness - lightness) / _MODIFIER_SOFTNESS)
        if modifier in BRIGHTER:
            membership = membership * _sigmoid((chroma - typical_chroma) / _MODIFIER_SOFTNESS)
        if modifier in MUTED:
            membership = membership * _sigmoid((typical_chroma - chroma) / _MODIFIER_SOFTNESS)
    result: np.ndarray = np.clip(membership, 0.0, 1.0)
    return result


def colour_words_in(text: str) -> ColourWords | None:
    """The colours a query names: "light blue", "navy blue" (navy), "off-white", "black and white", "red or blue"."""
    model = naming_model()
    words = [_SYNONYMS.get(word, word) for word in _WORD.findall(text.lower())]
    phrases: list[ColourPhrase] = []
    any_of, between, position = False, False, 0
    while position < len(words):
        word, end = _colour_word_at(words, position, model)
        if word is not None and _in_a_compound(words, position, end):
            word = None
        if word is None:
            between = between or (bool(phrases) and words[position] == "or")
            position += 1
            continue
        modifiers = _modifiers_before(words, position)
        # A shopper word followed by a basic family is one colour: "navy blue", "olive green", "mint green".
        if end < len(words) and word not in model.families and words[end] in model.families:
            end += 1
        phrase = ColourPhrase(word, modifiers)
        if phrase not in phrases:
            any_of = any_of or between
            phrases.append(phrase)
        between, position = False, end
    return ColourWords(tuple(phrases), any_of and len(phrases) > 1) if phrases else None


def _colour_word_at(words: list[str], position: int, model: NamingModel) -> tuple[str | None, int]:
    for term, size in _terms_longest_first():
        if " ".join(words[position:position + size]) == term:
            return term, position + size
    word = words[position]
    return (word, position + 1) if word in model.families else (None, position + 1)


def _in_a_compound(words: list[str], start: int, end: int) -> bool:
    """Whether the colour word at words[start:end] is part of a known thing's name ("olive oil", "face cream")."""
    word = words[end - 1]
    after = words[end] if end < len(words) else None
    before = words[start - 1] if start > 0 else None
    return (after in _COMPOUND_AFTER.get(word, ()) or before in _COMPOUND_BEFORE.get(word, ()))


@cache
def _terms_longest_first() -> tuple[tuple[str, int], ...]:
    return tuple(sorted(((term, len(term.split())) for term in naming_model().terms), key=lambda item: -item[1]))


def _modifiers_before(words: list[str], position: int) -> tuple[str, ...]:
    start = position
    while start > 0 and words[start - 1] in MODIFIERS and position - start < 2:
        start -= 1
    return tuple(words[start:position])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return result


def lab_to_hex(lab: tuple[float, float, float]) -> str:
    rgb = np.clip(lab2rgb(np.asarray([[lab]], dtype=np.float64)).reshape(3), 0.0, 1.0)
    return "#{:02x}{:02x}{:02x}".format(*(math.floor(v * 255 + 0.5) for v in rgb))
