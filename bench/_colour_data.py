"""The colour-naming data the naming model is fitted on and measured with. Needs matplotlib (the `colour-data`
extra), at fit and bench time only.

The XKCD colour survey names (Randall Munroe, 2010; public domain, CC0), as matplotlib ships them in
`matplotlib._color_data.XKCD_COLORS`: 949 names, each with the sRGB centroid of the colours people gave it.
A name's last word gives its basic family when it is one ("forest green" -> green, "navy blue" -> blue). Those names
are split once, by a hash of the name, into a part the naming model is fitted on and a held-out part that only
`bench/colour.py` measures on. Names that spell their family inside one word ("bluegreen", "greenish", "blue/grey")
are fitting data too; they are never held out, since the held-out part is the names ending in a basic word.

The survey names almost no blacks and whites, so neutrals come from a second, documented set: the near-neutral
categories of the ISCC-NBS system (Kelly and Judd, "Color: Universal Language and Dictionary of Names", NBS Special
Publication 440, 1976; a US government work), whose names end in white, gray or black, at their sRGB centroids as
tabulated by A. Jaffer. The same hash keeps two in five of them aside for measurement.
"""

import re
import zlib

BASIC = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey")
# A basic word made an adjective ("greenish", "purply") still names its family.
_ADJECTIVES = {"bluish": "blue", "greenish": "green", "reddish": "red", "pinkish": "pink", "pinky": "pink",
               "purplish": "purple", "purpleish": "purple", "purpley": "purple", "purply": "purple",
               "orangish": "orange", "orangeish": "orange", "yellowish": "yellow", "brownish": "brown",
               "greyish": "grey"}
# ISCC-NBS near-neutral categories (name: sRGB centroid).
ISCC_NBS_NEUTRALS = {
    "black": "#222222", "bluish black": "#202428", "brownish black": "#28201c", "greenish black": "#1e2321",
    "olive black": "#25241d", "purplish black": "#242124", "reddish black": "#282022",
    "dark gray": "#555555", "dark bluish gray": "#51585e", "dark greenish gray": "#4e5755",
    "dark purplish gray": "#5d555b", "dark reddish gray": "#5c504f", "brownish gray": "#5b504f",
    "olive gray": "#57554c", "medium gray": "#848482", "bluish gray": "#81878b", "greenish gray": "#7d8984",
    "purplish gray": "#8b8589", "reddish gray": "#8f817f", "light brownish gray": "#8e8279",
    "light olive gray": "#8a8776", "light gray": "#b9b8b5", "light bluish gray": "#b4bcc0",
    "light greenish gray": "#b2beb5", "light purplish gray": "#bfb9bd", "pinkish gray": "#c1b6b3",
    "yellowish gray": "#bfb8a5", "white": "#f2f3f4", "bluish white": "#e9e9ed", "greenish white": "#dfede8",
    "pinkish white": "#eae3e1", "purplish white": "#e8e3e5", "yellowish white": "#f0ead6",
}


def survey_names() -> dict[str, str]:
    """Every name of the survey with its hex colour."""
    from matplotlib._color_data import XKCD_COLORS

    return {key.removeprefix("xkcd:"): value for key, value in XKCD_COLORS.items()}


def family_of(name: str) -> str | None:
    last = name.split()[-1]
    last = "grey" if last in ("gray", "grey") else last
    return last if last in BASIC else None


def spelled_family(name: str) -> str | None:
    """The family of a name that does not end in a basic word but spells one inside its last word: "bluegreen"
    (green), "orangered" (red), "blue/grey" (grey), "greenish" (green)."""
    if family_of(name) is not None:
        return None
    if name in _ADJECTIVES:
        return _ADJECTIVES[name]
    last = re.split(r"[/ ]", name)[-1]
    return next((family for family in BASIC if last.endswith(family)), None)


def held_out(name: str) -> bool:
    """Two names in five (by a stable hash) are kept aside for measurement; the model never sees them. The eleven
    basic names themselves are always fitted: they are the terms' own focal colours."""
    return family_of(name) is not None and name not in BASIC and _aside(name)


def neutral_held_out(name: str) -> bool:
    return _aside(name)


def _aside(name: str) -> bool:
    return zlib.crc32(name.encode()) % 5 < 2


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
