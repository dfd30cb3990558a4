"""Fits the colour-naming table that ships in the package (trooply/vision/colour_names.json) from the XKCD colour
survey (bench/_colour_data.py): run it again only to change the terms or the data.

    python bench/fit_colour_names.py            # writes trooply/vision/colour_names.json

The table holds, in CIE Lab (D65, rounded to whole units): the survey names of the fitted part whose last word is a
basic colour, each with its family (the eleven basic terms of Berlin and Kay); for each shopper term, the names
that use it; and each term's median lightness and chroma, which the modifiers "light",
"dark", "bright" and "muted" move away from. Held-out names (`held_out`) are never used.
"""

import json
import sys
from pathlib import Path

import numpy as np
from skimage.color import rgb2lab

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._colour_data import BASIC, family_of, held_out, hex_to_rgb, survey_names  # noqa: E402

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


def fit() -> dict:
    names = survey_names()
    fitted = {name: lab_of(hex_value) for name, hex_value in names.items() if not held_out(name)}
    family_points = [[*whole(lab), BASIC.index(family)] for name, lab in sorted(fitted.items())
                     if (family := family_of(name)) is not None]
    # A term's own colours ("olive", "dark olive") are marked 1; those another colour word ends ("olive brown") 0.
    terms = {term: [[*whole(fitted[name]), int(family_of(name) is None or name.endswith(term))]
                    for name in term_names(term, names)] for term in TERM_FAMILIES}
    by_family: dict[str, list[list[float]]] = {family: [] for family in BASIC}
    for *lab, index in family_points:
        by_family[BASIC[index]].append(lab)
    return {
        "source": "XKCD colour survey (Randall Munroe, 2010), as shipped in matplotlib._color_data.XKCD_COLORS",
        "licence": "public domain (CC0 1.0)",
        "fitted_by": "bench/fit_colour_names.py",
        "families": list(BASIC),
        "family_points": family_points,
        "terms": terms,
        "term_families": TERM_FAMILIES,
        "reference": {term: median_lightness_chroma(points) for term, points in
                      (*by_family.items(), *((term, [row[:3] for row in rows]) for term, rows in terms.items()))},
    }


def main() -> None:
    table = fit()
    TABLE.write_text(json.dumps(table, separators=(",", ":")) + "\n")
    print(f"{TABLE}: {len(table['family_points'])} family points, {len(table['terms'])} shopper terms, "
          f"{TABLE.stat().st_size} bytes")


if __name__ == "__main__":
    main()
