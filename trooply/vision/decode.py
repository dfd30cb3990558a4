"""Decode untrusted image bytes into an upright RGB image, refusing oversized or unsupported input.

Pixels are kept at most `max_side` on the longest side: the model sees 224-336 px, detection 320 px and
colour histograms 64 px, so a 36-megapixel photo is never needed whole. A JPEG decodes straight at 1/2, 1/4
or 1/8 scale (draft mode); other formats decode whole, a few at a time, and are reduced. Sizes and boxes
that callers see stay in pixels of the original upright image.
"""

import ctypes
import hashlib
import io
import math
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cache

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from trooply.errors import ImageError

# Formats sniffed from the bytes; the rest of Pillow's list is exotic, and EPS would run Ghostscript.
_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
# Twice the largest model input (336 px) on the short side of a 3:2 photo, so a crop of half the image
# still fills the model's input; 3 MB of RGB, against 108 MB for a 36-megapixel photo decoded whole.
DECODE_MAX_SIDE = 1024
MAX_CONCURRENT_LARGE_DECODES = 2
_TURNED = (5, 6, 7, 8)  # EXIF orientations whose upright image swaps width and height
_TRIM_DELAY_S = 1.0


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # upright RGB, reduced to the decode limit
    width: int  # of the original upright image: the pixels that sizes and boxes are given in
    height: int
    content_hash: str

    @property
    def scale(self) -> tuple[float, float]:
        """Decoded pixels per original pixel, across and down."""
        return self.image.width / self.width, self.image.height / self.height

    def crop(self, box: Sequence[float]) -> Image.Image:
        """The region of a box in original pixels that lies inside the image (no checks: see crop_image)."""
        sx, sy = self.scale
        return pixel_crop(self.image, (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))


def decode_image(data: bytes, max_pixels: int, max_side: int | None = DECODE_MAX_SIDE,
                 large_decodes: int = MAX_CONCURRENT_LARGE_DECODES) -> DecodedImage:
    """`max_side` None keeps every pixel; `large_decodes` bounds the decodes far over it running at once."""
    try:
        with Image.open(io.BytesIO(data), formats=_FORMATS) as source:
            # Opening reads only the header: refuse the size before any pixel is allocated.
            if source.width * source.height > max_pixels:
                raise ImageError(f"image is {source.width}x{source.height}, too many pixels",
                                 code="image_too_large")
            width, height = source.size
            # Before the pixels are read: a JPEG then decodes at 1/2, 1/4 or 1/8 scale; other formats ignore it.
            source.draft("RGB", _fit(source.size, max_side))
            # Over twice the target each way: a format read whole (a drafted JPEG stays under this).
            large = source.width * source.height > 4 * (max_side or DECODE_MAX_SIDE) ** 2
            with large_decode_slots(large_decodes) if large else nullcontext():
                if source.getexif().get(ExifTags.Base.Orientation) in _TURNED:
                    width, height = height, width
                ImageOps.exif_transpose(source, in_place=True)
                image = _reduce(_to_rgb(source), max_side)
    except UnidentifiedImageError as exc:
        raise ImageError("not a supported image format", code="unsupported_media_type") from exc
    except Image.DecompressionBombError as exc:
        # Pillow's own ceiling, hit while opening when the header is absurd.
        raise ImageError("image has too many pixels", code="image_too_large") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError("image data is truncated or corrupt", code="invalid_image") from exc
    if image.size != (width, height):
        _heap_trimmer.request()
    return DecodedImage(image, width, height, hashlib.sha256(data).hexdigest())


def _fit(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    if max_side is None or max(size) <= max_side:
        return size
    factor = max_side / max(size)
    return max(1, round(size[0] * factor)), max(1, round(size[1] * factor))


def _reduce(image: Image.Image, max_side: int | None) -> Image.Image:
    size = _fit(image.size, max_side)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _to_rgb(image: Image.Image) -> Image.Image:
    if not image.has_transparency_data:
        return image.convert("RGB")
    # Transparent product shots go on white, the way storefronts show them.
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


@cache
def large_decode_slots(count: int) -> threading.BoundedSemaphore:
    """Process-wide, as memory is: every decoder given the same count shares the same slots."""
    return threading.BoundedSemaphore(count)


class _HeapTrimmer:
    """glibc keeps freed decode buffers in its arenas, so RSS stays at a burst's peak; malloc_trim hands them
    back to the OS. One trim runs `delay_s` after a reduced decode and covers all those before it: at most
    one per delay, and always one after the last decode of a burst."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self._trim = _malloc_trim()
        self._lock = threading.Lock()
        self._pending = False

    def request(self) -> None:
        trim = self._trim
        if trim is None:
            return
        with self._lock:
            if self._pending:
                return
            self._pending = True
        timer = threading.Timer(self.delay_s, self._run, (trim,))
        timer.daemon = True
        timer.start()

    def _run(self, trim: Callable[[int], int]) -> None:
        with self._lock:
            self._pending = False
        trim(0)


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # glibc only: musl and macOS have no such library or call
    except (OSError, AttributeError):
        return None


_heap_trimmer = _HeapTrimmer(_TRIM_DELAY_S)


def pixel_crop(image: Image.Image, box: Sequence[float]) -> Image.Image:
    """The pixels a box inside the image touches: at least one each way, however thin the box."""
    x1 = max(0, min(math.floor(box[0]), image.width - 1))
    y1 = max(0, min(math.floor(box[1]), image.height - 1))
    x2, y2 = min(math.ceil(box[2]), image.width), min(math.ceil(box[3]), image.height)
    return image.crop((x1, y1, max(x1 + 1, x2), max(y1 + 1, y2)))


MIN_CROP_SIDE = 8


def crop_image(decoded: DecodedImage, bbox: Sequence[float]) -> Image.Image:
    """The region [x1, y1, x2, y2] in pixels of the original upright image; a box that makes no sense is a
    422 saying why."""
    if len(bbox) != 4 or not all(math.isfinite(v) for v in bbox):
        raise ImageError(f"bbox {list(bbox)} must be four finite numbers [x1, y1, x2, y2]", code="bbox_invalid")
    x1, y1, x2, y2 = bbox
    if x2 <= x1 or y2 <= y1:
        raise ImageError(f"bbox {list(bbox)} is inverted or empty: x2 must exceed x1 and y2 exceed y1",
                         code="bbox_inverted")
    if x1 < 0 or y1 < 0 or x2 > decoded.width or y2 > decoded.height:
        raise ImageError(f"bbox {list(bbox)} lies outside the {decoded.width}x{decoded.height} image",
                         code="bbox_out_of_bounds")
    if x2 - x1 < MIN_CROP_SIDE or y2 - y1 < MIN_CROP_SIDE:
        raise ImageError(f"bbox {list(bbox)} is smaller than {MIN_CROP_SIDE}x{MIN_CROP_SIDE} pixels",
                         code="bbox_too_small")
    return decoded.crop(bbox)
