"""Standard product-retrieval test sets, read from the layouts they are published in, so that `trooply eval`
reproduces published Recall@K with any model (and shows what the re-ranking adds to it).

- **Stanford Online Products** (`Ebay_test.txt`: `image_id class_id super_class_id path`): every test image
  is a query against all the others; relevant = the other images of its product (`class_id`).
- **DeepFashion In-shop** (`list_eval_partition.txt`: a count, a header, then `image_name item_id
  evaluation_status`): the `query` images against the `gallery` images; relevant = the same `item_id`.
- **A folder tree** (`class_name/image.jpg`): like Stanford Online Products, one class per folder.

Recall@K is counted as these papers count it: a query scores 1 when any relevant image is in its top K.
"""

import http.server
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import quote

from trooply.errors import InvalidRequest

SOP_FILE = "Ebay_test.txt"
INSHOP_FILE = "list_eval_partition.txt"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif"}
LAYOUTS = ("auto", "sop", "inshop", "folders")


@dataclass(frozen=True)
class BenchmarkImage:
    id: str  # its product id in the throwaway catalogue
    path: str  # relative to the benchmark's root, '/'-separated
    label: str  # images with the same label show the same product


@dataclass
class Benchmark:
    name: str
    root: Path
    gallery: list[BenchmarkImage]
    queries: list[BenchmarkImage]
    _by_label: dict[str, set[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_label = defaultdict(set)
        for image in self.gallery:
            self._by_label[image.label].add(image.id)

    def relevant(self, query: BenchmarkImage) -> set[str]:
        """The gallery's other images of the query's product (a query that is in the gallery is not its own match)."""
        return self._by_label.get(query.label, set()) - {query.id}

    def describe(self) -> dict[str, str | int]:
        return {"name": self.name, "root": str(self.root), "gallery": len(self.gallery), "queries": len(self.queries),
                "products": len(self._by_label)}


def read_benchmark(path: Path, layout: str = "auto") -> Benchmark:
    """`path`: the layout's list file or the folder that holds it (or, for `folders`, the tree's root)."""
    path = Path(path)
    if not path.exists():
        raise InvalidRequest(f"{path} does not exist", code="invalid_eval_file")
    if layout == "auto":
        layout = _detect(path)
    readers = {"sop": read_stanford_online_products, "inshop": read_inshop, "folders": read_folders}
    if layout not in readers:
        raise InvalidRequest(f"unknown layout '{layout}': one of {', '.join(LAYOUTS)}", code="invalid_eval_file")
    benchmark = readers[layout](path)
    if not benchmark.queries:
        raise InvalidRequest(f"{path}: no query has a relevant image (each product needs two images at least)",
                             code="invalid_eval_file")
    return benchmark


def read_stanford_online_products(path: Path) -> Benchmark:
    listing = path / SOP_FILE if path.is_dir() else path
    rows = _rows(listing, header=("image_id", "class_id", "super_class_id", "path"))
    images = [BenchmarkImage(f"sop-{row[0]}", row[3], row[1]) for _number, row in rows]
    benchmark = Benchmark("Stanford Online Products", listing.parent, images, [])
    benchmark.queries = [image for image in images if benchmark.relevant(image)]
    return benchmark


def read_inshop(path: Path) -> Benchmark:
    listing = path
    if path.is_dir():
        published = path / "Eval" / INSHOP_FILE  # where the published archive keeps it
        listing = published if published.is_file() else path / INSHOP_FILE
    rows = _rows(listing, header=("image_name", "item_id", "evaluation_status"), skip=1)  # line 1 is the count
    gallery, queries = [], []
    for number, (name, item, status) in rows:
        image = BenchmarkImage(f"inshop-{number}", name, item)
        if status == "gallery":
            gallery.append(image)
        elif status == "query":
            queries.append(image)
    if not gallery:
        raise InvalidRequest(f"{listing}: no gallery image", code="invalid_eval_file")
    # The list sits in Eval/ and the images in Img/img/... in the published archive; elsewhere beside it.
    bases = [listing.parent, listing.parent.parent, listing.parent / "Img", listing.parent.parent / "Img"]
    root = next((b for b in bases if (b / gallery[0].path).is_file()), None)
    if root is None:
        raise InvalidRequest(f"{listing}: image {gallery[0].path} not found under {', '.join(map(str, bases))}",
                             code="invalid_eval_file")
    benchmark = Benchmark("DeepFashion In-shop", root, gallery, [])
    benchmark.queries = [query for query in queries if benchmark.relevant(query)]
    return benchmark


def read_folders(path: Path) -> Benchmark:
    if not path.is_dir():
        raise InvalidRequest(f"{path} is not a folder of class folders", code="invalid_eval_file")
    images: list[BenchmarkImage] = []
    for folder in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()):
            images.append(BenchmarkImage(f"img-{len(images)}", f"{folder.name}/{file.name}", folder.name))
    if not images:
        raise InvalidRequest(f"{path}: no class_name/image files ({', '.join(sorted(IMAGE_SUFFIXES))})",
                             code="invalid_eval_file")
    benchmark = Benchmark(f"folders {path.name}", path, images, [])
    benchmark.queries = [image for image in images if benchmark.relevant(image)]
    return benchmark


@contextmanager
def served(root: Path) -> Iterator[str]:
    """The benchmark's images over HTTP on 127.0.0.1, so that they take the ingest pipeline's own path (fetch,
    decode, encode, signals); yields the base URL."""
    handler = partial(_QuietFiles, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="eval-images", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def image_url(base: str, image: BenchmarkImage) -> str:
    return base + quote(image.path)


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _detect(path: Path) -> str:
    if path.is_file():
        names = {SOP_FILE: "sop", INSHOP_FILE: "inshop"}
        if path.name in names:
            return names[path.name]
        raise InvalidRequest(f"{path}: not {SOP_FILE} nor {INSHOP_FILE}; give --layout", code="invalid_eval_file")
    if (path / SOP_FILE).is_file():
        return "sop"
    if (path / INSHOP_FILE).is_file() or (path / "Eval" / INSHOP_FILE).is_file():
        return "inshop"
    return "folders"


def _rows(listing: Path, header: tuple[str, ...], skip: int = 0) -> list[tuple[int, list[str]]]:
    """(line number, fields) of each data line after the header, every line checked for the header's width."""
    if not listing.is_file():
        raise InvalidRequest(f"{listing} does not exist", code="invalid_eval_file")
    lines = listing.read_text().splitlines()
    body = [(n, line.split()) for n, line in enumerate(lines, 1) if n > skip and line.strip()]
    if not body or tuple(body[0][1]) != header:
        raise InvalidRequest(f"{listing}: line {skip + 1} should be the header '{' '.join(header)}'",
                             code="invalid_eval_file")
    for number, fields in body[1:]:
        if len(fields) != len(header):
            raise InvalidRequest(f"{listing}: line {number} has {len(fields)} fields, not {len(header)} "
                                 f"({' '.join(header)})", code="invalid_eval_file")
    return body[1:]
