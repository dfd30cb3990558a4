"""Colour signal quality and cost, before (the 64-bin histogram of the base commit) and after (palettes named by the
model fitted from the XKCD colour survey), measured only on the survey names held out of the fit.

Each held-out name becomes a product photo: a T-shirt of that colour on white ("solid"), and the same shirt with
folds and shading, a knit texture, a white printed stripe, worn by a model (skin tones in turn, hair, studio
backdrop), laid on a skin-toned backdrop, and shaded then JPEG-compressed. The name's last word is the family
people gave it ("forest green" -> green). Printed per setting:
  - family agreement: the stored colour's family (its main named colour) equals the people's family;
  - precision@10 per basic colour word: of the products the colour signal scores highest for the word, the share of
    that family (at k = min(10, held-out colours of the family): the survey has few blacks and whites).
And the colour signal's time per image at ingest, on a 1200 x 1500 photo and a 240 x 300 one.

    .venv/bin/python bench/colour.py                  # needs the colour-data extra (matplotlib) and git (old code)
    .venv/bin/python bench/colour.py --settings solid  # one setting only
"""

import argparse
import importlib.util
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

from PIL import Image  # noqa: E402

from bench._colour_data import BASIC, family_of, held_out, hex_to_rgb, survey_names  # noqa: E402
from bench.fit_colour_names import TERM_FAMILIES  # noqa: E402
from tests.support.product_photos import SKIN_TONES, garment, jpeg, on_model, printed, shaded, textured  # noqa: E402
from trooply.vision.colour import colour_match, colour_palette, palette_names, text_target  # noqa: E402

BASE_COMMIT = "8a1f8ea"  # the last commit with the histogram
SETTINGS: dict[str, Callable[[tuple[int, int, int], int], Image.Image]] = {
    "solid": lambda rgb, i: garment(rgb),
    "shaded": lambda rgb, i: shaded(rgb),
    "textured": lambda rgb, i: textured(rgb, seed=i),
    "printed": lambda rgb, i: printed(rgb, (255, 255, 255), background=(238, 238, 238)),
    "on a model": lambda rgb, i: on_model(rgb, SKIN_TONES[i % len(SKIN_TONES)]),
    "on a skin-tone backdrop": lambda rgb, i: garment(rgb, background=SKIN_TONES[i % len(SKIN_TONES)]),
    "shaded + JPEG q35": lambda rgb, i: jpeg(shaded(rgb)),
}


def old_colour_module() -> ModuleType:
    source = subprocess.run(["git", "show", f"{BASE_COMMIT}:trooply/vision/colour.py"], check=True,
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parent).stdout
    path = Path(tempfile.mkdtemp()) / "old_colour.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_colour", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def family_of_word(word: str) -> str:
    word = "grey" if word == "gray" else word
    return word if word in BASIC else TERM_FAMILIES[word]


class Before:
    label = "before (histogram)"

    def __init__(self) -> None:
        self.old = old_colour_module()

    def stored(self, image: Image.Image) -> list[float]:
        return self.old.colour_histogram(image)  # type: ignore[no-any-return]

    def family(self, stored: list[float]) -> str:
        return family_of_word(self.old.dominant_colour_name(stored))

    def score(self, word: str, stored: list[float]) -> float:
        return float(self.old.histogram_intersection(self.old.target_histogram([word]), stored))


class After:
    label = "after (palette + names)"

    def stored(self, image: Image.Image):  # type: ignore[no-untyped-def]
        return colour_palette(image)

    def family(self, stored) -> str:  # type: ignore[no-untyped-def]
        return str(palette_names(stored)[0]["family"])

    def score(self, word: str, stored) -> float:  # type: ignore[no-untyped-def]
        target = text_target(word)
        assert target is not None
        return colour_match(target, stored).score


def measure(method, images: list[Image.Image], families: list[str]) -> None:  # type: ignore[no-untyped-def]
    stored = [method.stored(image) for image in images]
    named = [method.family(s) for s in stored]
    agreement = sum(n == f for n, f in zip(named, families, strict=True)) / len(families)
    errors = Counter(f"{f}->{n}" for n, f in zip(named, families, strict=True) if n != f).most_common(4)
    precisions = {}
    for word in BASIC:
        k = min(10, families.count(word))
        if k == 0:
            continue
        scores = [method.score(word, s) for s in stored]
        top = sorted(range(len(stored)), key=lambda i: -scores[i])[:k]
        precisions[word] = sum(families[i] == word for i in top) / k
    mean = statistics.mean(precisions.values())
    print(f"    {method.label:26s} family agreement {agreement:6.1%}   mean precision@10 {mean:.2f}   "
          f"commonest errors {', '.join(f'{e} ({n})' for e, n in errors)}")
    print("      " + "  ".join(f"{word} {p:.1f}" for word, p in precisions.items()))


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
    parser.add_argument("--timing-runs", type=int, default=200)
    args = parser.parse_args()
    names = survey_names()
    kept = sorted(name for name in names if held_out(name))
    families = [str(family_of(name)) for name in kept]
    print(f"XKCD colour survey (CC0): {len(names)} names; {len(kept)} held out of the fit, by family: "
          + ", ".join(f"{f} {families.count(f)}" for f in BASIC))
    methods = [Before(), After()]
    for setting in args.settings:
        render = SETTINGS[setting]
        images = [render(hex_to_rgb(names[name]), i) for i, name in enumerate(kept)]
        print(f"  {setting}:")
        for method in methods:
            measure(method, images, families)
    for size in ((1200, 1500), (240, 300)):
        for method in methods:
            wall, cpu = time_per_image(method.stored, size, args.timing_runs)
            print(f"  colour signal per image {size[0]}x{size[1]}, {method.label}: median {wall:.2f} ms wall, "
                  f"{cpu:.2f} ms CPU  (target <= 5 ms)")


if __name__ == "__main__":
    main()
