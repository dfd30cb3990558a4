"""Colour signal quality and cost: before (the 64-bin histogram of the base commit), the previous naming model (round
3b: a 15-NN vote by CIEDE2000), and after (the model chosen by repeated cross-validation on the fitted part,
`bench/fit_colour_names.py`: a Gaussian region per chromatic family in CAM16-UCS), measured only on names held out of
the fit.

Each held-out name becomes a product photo: a T-shirt of that colour on white ("solid"), and the same shirt with
folds and shading, a knit texture, a white printed stripe, worn by a model (skin tones in turn, hair, studio
backdrop), laid on a skin-toned backdrop, and shaded then JPEG-compressed. The name's last word is the family
people gave it ("forest green" -> green). Printed per setting:
  - family agreement: the stored colour's family (its main named colour) equals the people's family;
  - precision@10 per basic colour word: of the products the colour signal scores highest for the word, the share of
    that family (at k = min(10, held-out colours of the family): the survey has few blacks and whites).
  - neutrals: the held-out ISCC-NBS near-neutral categories (bench/_colour_data.py) rendered the same way, their
    family agreement by family, and precision@k for black, white and grey over held-out survey names and neutrals
    together (so black and white rest on several colours, not the survey's one each).
And the colour signal's time per image at ingest, on a 1200 x 1500 photo and a 240 x 300 one. "Previous" is the
previous round's palette and naming code, loaded from git.

    .venv/bin/python bench/colour.py                  # needs the colour-data extra (matplotlib) and git (old code)
    .venv/bin/python bench/colour.py --settings solid  # one setting only
    .venv/bin/python bench/colour.py --part fitted     # on the fitted names instead: for choices about photos
"""

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench._colour_data import (  # noqa: E402
    BASIC,
    ISCC_NBS_NEUTRALS,
    family_of,
    held_out,
    hex_to_rgb,
    neutral_held_out,
    survey_names,
)
from bench.fit_colour_names import TERM_FAMILIES  # noqa: E402
from tests.support.product_photos import SKIN_TONES, garment, jpeg, on_model, printed, shaded, textured  # noqa: E402
from trooply.vision import colour_names  # noqa: E402
from trooply.vision.colour import Palette, colour_palette  # noqa: E402

BASE_COMMIT = "8a1f8ea"  # the last commit with the histogram
PREVIOUS_COMMIT = "c85409b"  # the last commit with the previous naming model (round 3b)
NEUTRAL_WORDS = ("black", "white", "grey")
SETTINGS: dict[str, Callable[[tuple[int, int, int], int], Image.Image]] = {
    "solid": lambda rgb, i: garment(rgb),
    "shaded": lambda rgb, i: shaded(rgb),
    "textured": lambda rgb, i: textured(rgb, seed=i),
    "printed": lambda rgb, i: printed(rgb, (255, 255, 255), background=(238, 238, 238)),
    "on a model": lambda rgb, i: on_model(rgb, SKIN_TONES[i % len(SKIN_TONES)]),
    "on a skin-tone backdrop": lambda rgb, i: garment(rgb, background=SKIN_TONES[i % len(SKIN_TONES)]),
    "shaded + JPEG q35": lambda rgb, i: jpeg(shaded(rgb)),
}


def module_at(commit: str, path: str, data: tuple[str, ...] = ()) -> ModuleType:
    """A module as it was at a commit (with the data files beside it), loaded under its own name."""
    folder = Path(tempfile.mkdtemp())
    for name in (path, *data):
        source = subprocess.run(["git", "show", f"{commit}:{name}"], check=True, capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent).stdout
        (folder / Path(name).name).write_text(source)
    spec = importlib.util.spec_from_file_location(f"{Path(path).stem}_{commit}", folder / Path(path).name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def previous_modules() -> tuple[ModuleType, ModuleType]:
    """The previous round's naming module, and its palette module importing that naming module (not today's)."""
    names = module_at(PREVIOUS_COMMIT, "trooply/vision/colour_names.py", ("trooply/vision/colour_names.json",))
    today = sys.modules["trooply.vision.colour_names"]
    sys.modules["trooply.vision.colour_names"] = names
    try:
        return names, module_at(PREVIOUS_COMMIT, "trooply/vision/colour.py")
    finally:
        sys.modules["trooply.vision.colour_names"] = today


def family_of_word(word: str) -> str:
    word = "grey" if word == "gray" else word
    return word if word in BASIC else TERM_FAMILIES[word]


class Before:
    label = "before (histogram)"

    def __init__(self) -> None:
        self.old = module_at(BASE_COMMIT, "trooply/vision/colour.py")

    def stored(self, image: Image.Image) -> list[float]:
        return self.old.colour_histogram(image)  # type: ignore[no-any-return]

    def family(self, stored: list[float]) -> str:
        return family_of_word(self.old.dominant_colour_name(stored))

    def score(self, word: str, stored: list[float]) -> float:
        return float(self.old.histogram_intersection(self.old.target_histogram([word]), stored))


class Named:
    """Palettes named by a naming module: the palette's main colour (shares summed per name, as `palette_names`
    does) gives its family; a basic word scores the share of the palette in the word (as `colour_match` does)."""

    def __init__(self, label: str, names: ModuleType, palette: Callable[[Image.Image], Palette]) -> None:
        self.label, self.names, self.stored = label, names, palette

    def family(self, stored: Palette) -> str:
        shares: Counter[tuple[str, str]] = Counter()
        for colour, name in zip(stored, self.names.name_colours(np.asarray([c.lab for c in stored])), strict=True):
            shares[(name.name, name.family)] += colour.share
        return shares.most_common(1)[0][0][1]

    def score(self, word: str, stored: Palette) -> float:
        lab, shares = np.asarray([c.lab for c in stored]), np.asarray([c.share for c in stored])
        return min(1.0, float(np.dot(shares, self.names.phrase_membership(lab, self.names.ColourPhrase(word)))))


def measure(method, stored: list, families: list[str], neutral: int) -> None:  # type: ignore[no-untyped-def]
    """Family agreement and precision on the survey names (the first len - neutral), then the neutrals."""
    named = [method.family(s) for s in stored]
    survey = len(families) - neutral
    agreeing = [n == f for n, f in zip(named, families, strict=True)]
    errors = Counter(f"{f}->{n}" for n, f in zip(named[:survey], families[:survey], strict=True) if n != f)
    print(f"    {method.label:26s} family agreement {sum(agreeing[:survey]) / survey:6.1%}   mean precision@10 "
          f"{statistics.mean(precision(method, stored[:survey], families[:survey]).values()):.2f}   "
          f"commonest errors {', '.join(f'{e} ({n})' for e, n in errors.most_common(4))}")
    print("      " + "  ".join(f"{word} {p:.1f}" for word, p in
                                precision(method, stored[:survey], families[:survey]).items()))
    if neutral:
        by_family = {word: [a for a, f in zip(agreeing[survey:], families[survey:], strict=True) if f == word]
                     for word in NEUTRAL_WORDS}
        with_neutrals = precision(method, stored, families, NEUTRAL_WORDS)
        print(f"      neutrals: agreement {sum(agreeing[survey:]) / neutral:.0%} ("
              + ", ".join(f"{word} {sum(a)}/{len(a)}" for word, a in by_family.items()) + ");  precision@k with them: "
              + "  ".join(f"{word} {p:.2f} (k={min(10, families.count(word))})" for word, p in with_neutrals.items()))


def precision(method, stored: list, families: list[str], words=BASIC) -> dict[str, float]:  # type: ignore[no-untyped-def]
    precisions = {}
    for word in words:
        k = min(10, families.count(word))
        if k:
            scores = [method.score(word, s) for s in stored]
            top = sorted(range(len(stored)), key=lambda i: -scores[i])[:k]
            precisions[word] = sum(families[i] == word for i in top) / k
    return precisions


def time_per_image(signal: Callable[[Image.Image], object], size: tuple[int, int], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this thread (the CPU time holds on a busy, shared machine)."""
    image = shaded((200, 30, 35)).resize(size)
    signal(image)
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.thread_time()
        signal(image)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - started_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--part", choices=("held-out", "fitted"), default="held-out")
    parser.add_argument("--timing-runs", type=int, default=200)
    args = parser.parse_args()
    aside = args.part == "held-out"
    names = survey_names()
    kept = sorted(name for name in names if family_of(name) and name not in BASIC and held_out(name) == aside)
    neutrals = sorted(name for name in ISCC_NBS_NEUTRALS if neutral_held_out(name) == aside)
    colours = [names[name] for name in kept] + [ISCC_NBS_NEUTRALS[name] for name in neutrals]
    families = [str(family_of(name)) for name in [*kept, *neutrals]]
    print(f"XKCD colour survey (CC0): {len(names)} names; {len(kept)} {args.part} names ending in a basic word, by "
          f"family: " + ", ".join(f"{f} {families[:len(kept)].count(f)}" for f in BASIC)
          + f"; plus {len(neutrals)} {args.part} ISCC-NBS neutrals")
    fitted = json.loads(Path(colour_names.__file__).with_name("colour_names.json").read_text())["parameters"]
    print(f"naming settings (chosen by cross-validation on the fitted part): {fitted}")
    before = Before()
    previous_names, previous_colour = previous_modules()
    previous = Named("previous (round 3b)", previous_names, previous_colour.colour_palette)
    after = Named("after (cross-validated)", colour_names, colour_palette)
    for setting in args.settings:
        render = SETTINGS[setting]
        images = [render(hex_to_rgb(value), i) for i, value in enumerate(colours)]
        print(f"  {setting}:")
        for method in (before, previous, after):
            measure(method, [method.stored(image) for image in images], families, len(neutrals))
    for size in ((1200, 1500), (240, 300)):
        for label, signal in ((before.label, before.stored), (previous.label, previous.stored),
                              (after.label, after.stored)):
            wall, cpu = time_per_image(signal, size, args.timing_runs)
            print(f"  colour signal per image {size[0]}x{size[1]}, {label}: median {wall:.2f} ms wall, "
                  f"{cpu:.2f} ms CPU  (target <= 5 ms)")


if __name__ == "__main__":
    main()
