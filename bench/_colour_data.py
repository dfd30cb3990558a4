"""The XKCD colour survey names (Randall Munroe, 2010; public domain, CC0), as matplotlib ships them in
`matplotlib._color_data.XKCD_COLORS`: 949 names, each with the sRGB centroid of the colours people gave it.

A name's last word gives its basic family when it is one ("forest green" -> green, "navy blue" -> blue). Those
names are split once, by a hash of the name, into a part the naming model is fitted on and a held-out part that only
`bench/colour.py` measures on. Needs matplotlib (the `colour-data` extra), at fit and bench time only.
"""

import zlib

BASIC = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey")


def survey_names() -> dict[str, str]:
    """Every name of the survey with its hex colour."""
    from matplotlib._color_data import XKCD_COLORS

    return {key.removeprefix("xkcd:"): value for key, value in XKCD_COLORS.items()}


def family_of(name: str) -> str | None:
    last = name.split()[-1]
    last = "grey" if last == "gray" else last
    return last if last in BASIC else None


def held_out(name: str) -> bool:
    """Two names in five (by a stable hash) are kept aside for measurement; the model never sees them. The eleven
    basic names themselves are always fitted: they are the terms' own focal colours."""
    return family_of(name) is not None and name not in BASIC and zlib.crc32(name.encode()) % 5 < 2


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
