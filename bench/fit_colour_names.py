"""Fits the colour-naming table that ships in the package (trooply/vision/colour_names.json) from the XKCD colour
survey and the ISCC-NBS neutrals (bench/_colour_data.py): run it again only to change the terms or the data.

    python bench/fit_colour_names.py            # validates the settings, then writes trooply/vision/colour_names.json

The table holds, in CIE Lab (D65, rounded to whole units): the survey names of the fitted part whose family is
spelled out (the eleven basic terms of Berlin and Kay), each with its family; for each shopper term, the names that
use it; each term's median lightness and chroma, which the modifiers "light", "dark", "bright" and "muted" move away
from; and the model's settings. Held-out names (`held_out`, `neutral_held_out`) are never used, not even to choose
the settings:
  - the vote's settings (neighbours, fade, the chroma below which a colour is neutral) are chosen by 5-fold
    cross-validation on the fitted survey names (a fold's names are named by a table fitted without them);
  - the lightness bounds of black, grey and white are fitted on the ISCC-NBS neutrals of the fitted part: each bound
    sits midway between the lightest darker-named and the darkest lighter-named category.
"""

import itertools
import json
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skimage.color import rgb2lab

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._colour_data import (  # noqa: E402
    BASIC,
    ISCC_NBS_NEUTRALS,
    family_of,
    held_out,
    hex_to_rgb,
    neutral_held_out,
    spelled_family,
    survey_names,
)
from trooply.vision.colour_names import build_model, name_with  # noqa: E402

TABLE = Path(__file__).resolve().parents[1] / "trooply" / "vision" / "colour_names.json"
# The words shoppers type beyond the basic eleven, each a region made of every survey name that uses it, with
# the basic family a merchandiser files each shopper word under (the survey names few of them with one).
TERM_FAMILIES = {
    "navy": "blue", "burgundy": "red", "maroon": "red", "beige": "brown", "cream": "white", "ivory": "white",
    "tan": "brown", "khaki": "brown", "olive": "green", "teal": "blue", "turquoise": "blue", "lilac": "purple",
    "gold": "yellow", "silver": "grey", "charcoal": "grey", "mint": "green", "coral": "orange", "mustard": "yellow",
    "lavender": "purple", "magenta": "pink", "fuchsia": "pink", "cyan": "blue", "aqua": "blue", "indigo": "blue",
    "violet": "purple", "mauve": "pink", "peach": "orange", "salmon": "pink", "rust": "orange", "camel": "brown",
    "taupe": "brown", "crimson": "red", "scarlet": "red", "emerald": "green", "cobalt": "blue", "off white": "white",
}
# Extra survey names for a term that does not appear in them by its own word.
EXTRA = {"off white": ("eggshell", "ivory", "cream")}
# Names that use a term's word for another colour ("navy green" is a green).
EXCLUDED = frozenset({"navy green", "tan green", "khaki green", "mustard green", "greenish beige", "violet pink",
                      "violet red", "red violet", "lavender pink", "eggshell blue"})
# The vote's settings cross-validation chooses among: first the space and the nearest colours' vote, then, in the
# chosen space, how much of the posterior Gaussian regions per family give and how spread they are.
GRID = {"vote_space": ("cielab", "cam16ucs"), "neighbours": (9, 15, 21), "vote_fade": (4.0, 8.0, 12.0),
        "neutral_chroma": ((6.0, 12.0), (8.0, 14.0), (10.0, 16.0), (12.0, 18.0))}
REGIONS = {"gaussian_share": (0.5, 1.0), "gaussian_spread": (3.0, 10.0, 30.0)}
FOLDS = 5
# Cross-validation is repeated over this many fold assignments and averaged: one name is 0.3 points of one run, and
# a single run's ranking of close settings is mostly noise.
REPEATS = 4
# The mean precision per basic colour word a setting must validate at (the target): family agreement is what
# is maximised, among the settings whose words' top products are mostly of that word.
PRECISION_TARGET = 0.9
NEUTRAL_FAMILIES = frozenset({"black", "white", "grey"})
NEUTRAL_SOFTNESS = 3.0  # units of L*: a smoothing of the fitted bounds, not a bound
# So close to one of a shopper word's colours that the word names the colour, and its family, whatever the vote says
# (the survey calls near-whites with a tint "pale yellow" or "pale green", a merchandiser cream and ivory): for the
# words of which families, cross-validation decides among these.
TERM_DECIDES_WITHIN = 4.0
TERM_DECIDES = ((), ("white", "grey"), ("white", "grey", "brown"))


def lab_of(hex_value: str) -> list[float]:
    rgb = np.asarray([[hex_to_rgb(hex_value)]], dtype=np.float64) / 255.0
    return [float(v) for v in rgb2lab(rgb).reshape(3)]


def whole(lab: list[float]) -> list[int]:
    return [round(v) for v in lab]


def term_names(term: str, names: dict[str, str]) -> list[str]:
    words = term.split()
    found = [name for name in names
             if any(name.split()[i:i + len(words)] == words for i in range(len(name.split())))]
    return sorted(name for name in [*found, *EXTRA.get(term, ())]
                  if name in names and name not in EXCLUDED and not held_out(name))


def median_lightness_chroma(points: list[list[float]]) -> list[float]:
    lab = np.asarray(points)
    return [round(float(np.median(lab[:, 0])), 1), round(float(np.median(np.hypot(lab[:, 1], lab[:, 2]))), 1)]


def named_family(name: str) -> str | None:
    return family_of(name) or spelled_family(name)


def table_from(names: dict[str, str], fitted: dict[str, list[float]], parameters: dict) -> dict:
    """The table fitted on `fitted` (name -> Lab), with the given settings."""
    family_points = [[*whole(lab), BASIC.index(family)] for name, lab in sorted(fitted.items())
                     if (family := named_family(name)) is not None]
    terms = {term: [whole(fitted[name]) for name in term_names(term, names) if name in fitted]
             for term in TERM_FAMILIES}
    by_family: dict[str, list[list[float]]] = {family: [] for family in BASIC}
    for *lab, index in family_points:
        by_family[BASIC[index]].append(lab)
    return {
        "source": "XKCD colour survey (Randall Munroe, 2010), as shipped in matplotlib._color_data.XKCD_COLORS; "
                  "neutral lightness bounds from the ISCC-NBS neutrals (Kelly and Judd, NBS SP 440, 1976)",
        "licence": "public domain (CC0 1.0; US government work)",
        "fitted_by": "bench/fit_colour_names.py",
        "parameters": parameters,
        "families": list(BASIC),
        # Only chromatic colours vote: whether a colour is black, grey or white is its chroma's and lightness's call,
        # so a beige or a tan far from every survey colour is never voted grey.
        "family_points": [point for point in family_points if BASIC[point[3]] not in NEUTRAL_FAMILIES],
        "terms": terms,
        "term_families": TERM_FAMILIES,
        "reference": {term: median_lightness_chroma(points) for term, points in
                      (*by_family.items(), *terms.items()) if points},
    }


def neutral_lightness(fitted: dict[str, list[float]]) -> list[float]:
    """The black-grey and grey-white bounds of L*, fitted on the neutrals of the fitted part: the ISCC-NBS categories
    and the survey's black, grey and white names."""
    lightness: dict[str, list[float]] = {"black": [], "grey": [], "white": []}
    for name, hex_value in ISCC_NBS_NEUTRALS.items():
        if not neutral_held_out(name):
            lightness[str(family_of(name))].append(lab_of(hex_value)[0])
    for name, lab in fitted.items():
        if family_of(name) in lightness:
            lightness[str(family_of(name))].append(lab[0])
    return [bound(lightness["black"], lightness["grey"]), bound(lightness["grey"], lightness["white"])]


def bound(darker: list[float], lighter: list[float]) -> float:
    """The L* that misnames fewest of the two, midway in the widest gap among equals (the survey's "pale grey" is
    as light as its white: no bound separates every name)."""
    values = sorted({*darker, *lighter})
    gaps = [(low, high) for low, high in itertools.pairwise(values)]
    def misnamed(at: float) -> int:
        return sum(v > at for v in darker) + sum(v < at for v in lighter)
    low, high = min(gaps, key=lambda gap: (misnamed((gap[0] + gap[1]) / 2), gap[0] - gap[1]))
    return round((low + high) / 2, 1)


def fold_of(name: str, repeat: int = 0) -> int:
    return zlib.crc32((f"fold:{name}" if repeat == 0 else f"fold{repeat}:{name}").encode()) % FOLDS


@dataclass(frozen=True)
class Validation:
    agreement: float  # family agreement
    precision: dict[str, float]  # per basic word: of the k = min(10, its names) names scored highest, its share

    @property
    def mean_precision(self) -> float:
        return sum(self.precision.values()) / len(self.precision)


def cross_validated(names: dict[str, str], fitted: dict[str, list[float]], parameters: dict) -> Validation:
    """Family agreement and precision per basic word on the fitted survey names, each fold named by a table fitted
    without it, averaged over `REPEATS` fold assignments. The basic names are never validated (they are always
    fitted: the terms' focal colours); the spelled ones only fit."""
    runs = [cross_validated_once(names, fitted, parameters, repeat) for repeat in range(REPEATS)]
    return Validation(sum(run.agreement for run in runs) / REPEATS,
                      {word: sum(run.precision[word] for run in runs) / REPEATS for word in runs[0].precision})


def cross_validated_once(names: dict[str, str], fitted: dict[str, list[float]], parameters: dict,
                         repeat: int) -> Validation:
    validated = [name for name in fitted if family_of(name) is not None and name not in BASIC]
    families = [str(family_of(name)) for name in validated]
    agreeing, scores = 0, np.zeros((len(validated), len(BASIC)))
    for fold in range(FOLDS):
        aside = [i for i, name in enumerate(validated) if fold_of(name, repeat) == fold]
        model = build_model(table_from(names, {n: lab for n, lab in fitted.items()
                                               if n not in {validated[i] for i in aside}}, parameters))
        named, scores[aside] = name_with(model, np.asarray([fitted[validated[i]] for i in aside]))
        agreeing += sum(colour.family == families[i] for colour, i in zip(named, aside, strict=True))
    precision = {}
    for index, word in enumerate(BASIC):
        if k := min(10, families.count(word)):
            top = np.argsort(-scores[:, index], kind="stable")[:k]
            precision[word] = sum(families[i] == word for i in top) / k
    return Validation(agreeing / len(validated), precision)


def chosen_parameters(names: dict[str, str], fitted: dict[str, list[float]], show: bool) -> dict:
    """The vote's settings by cross-validation over the grid; then the Gaussian regions' share and spread in the
    chosen space (`REGIONS`, or none); then, among the shopper-word families that may override the vote
    (`TERM_DECIDES`), the widest that validates no worse. Each time the best family agreement among the settings
    whose mean precision per basic word validates at 0.9 or more (if none does, among all), and on equal agreement
    the better precision; among equals the first in grid order wins: the simpler."""
    lightness = neutral_lightness(fitted)
    results = []
    for space, neighbours, fade, chroma in itertools.product(*GRID.values()):
        parameters = {"vote_space": space, "neighbours": neighbours, "vote_fade": fade, "neutral_chroma": list(chroma),
                      "neutral_lightness": lightness, "neutral_softness": NEUTRAL_SOFTNESS,
                      "gaussian_share": 0.0, "gaussian_spread": 0.0,
                      "term_decides": {"within": TERM_DECIDES_WITHIN, "families": []}}
        results.append((cross_validated(names, fitted, parameters), parameters))
    results.sort(key=lambda result: best_first(result[0]))  # stable: the first of equals in grid order wins
    nearest_validation, nearest = results[0]
    regions = [(nearest_validation, nearest)]
    for share, spread in itertools.product(*REGIONS.values()):
        parameters = nearest | {"gaussian_share": share, "gaussian_spread": spread}
        regions.append((cross_validated(names, fitted, parameters), parameters))
    best_validation, best = min(regions, key=lambda result: best_first(result[0]))
    overrides = []
    for families in TERM_DECIDES:
        parameters = best | {"term_decides": {"within": TERM_DECIDES_WITHIN, "families": list(families)}}
        overrides.append((cross_validated(names, fitted, parameters), len(families), parameters))
    best_validation, _, best = min(overrides, key=lambda result: (*best_first(result[0]), -result[1]))
    if show:
        print(f"neutral lightness bounds (fitted neutrals): black < {lightness[0]} < grey < {lightness[1]} < white")
        print(f"{FOLDS}-fold cross-validated family agreement and precision@10 per basic word on the fitted survey "
              f"names, mean of {REPEATS} fold assignments (best first; those with mean precision >= {PRECISION_TARGET} "
              "before the others):")
        for space in GRID["vote_space"]:
            for validation, parameters in [result for result in results if result[1]["vote_space"] == space][:3]:
                print(f"  {shown(validation)}  {space:8s}  neighbours {parameters['neighbours']:2d}  "
                      f"fade {parameters['vote_fade']:4.1f}  neutral chroma {parameters['neutral_chroma']}")
        for validation, parameters in regions[1:]:
            print(f"  {shown(validation)}  {parameters['vote_space']:8s}  Gaussian regions: share "
                  f"{parameters['gaussian_share']}, spread {parameters['gaussian_spread']}")
        for validation, _, parameters in overrides:
            families = parameters["term_decides"]["families"] or "no family"
            print(f"  {shown(validation)}  with shopper words of {families} deciding within delta E "
                  f"{TERM_DECIDES_WITHIN}")
    return best | {"validated_agreement": round(best_validation.agreement, 4),
                   "validated_precision": round(best_validation.mean_precision, 3),
                   "validated_by": f"{FOLDS}-fold x {REPEATS}"}


def best_first(validation: Validation) -> tuple[bool, float, float]:
    """Settings that validate the precision target first, then by family agreement, then by precision."""
    return validation.mean_precision < PRECISION_TARGET, -validation.agreement, -validation.mean_precision


def shown(validation: Validation) -> str:
    worst = min(validation.precision, key=lambda word: validation.precision[word])
    return (f"{validation.agreement:6.1%}  precision@10 mean {validation.mean_precision:.2f}, lowest {worst} "
            f"{validation.precision[worst]:.2f}")


def fit(show: bool = True) -> dict:
    names = survey_names()
    fitted = {name: lab_of(hex_value) for name, hex_value in names.items() if not held_out(name)}
    return table_from(names, fitted, chosen_parameters(names, fitted, show))


def main() -> None:
    table = fit()
    TABLE.write_text(json.dumps(table, separators=(",", ":")) + "\n")
    print(f"{TABLE}: {len(table['family_points'])} family points, {len(table['terms'])} shopper terms, "
          f"{TABLE.stat().st_size} bytes")


if __name__ == "__main__":
    main()
