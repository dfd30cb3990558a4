"""Decode untrusted image bytes into an upright RGB image, refusing oversized or unsupported input."""

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from trooply.errors import ImageError

# Formats sniffed from the bytes; the rest of Pillow's list is exotic, and EPS would run Ghostscript.
_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image
    width: int
    height: int
    content_hash: str


def decode_image(data: bytes, max_pixels: int) -> DecodedImage:
    try:
        with Image.open(io.BytesIO(data), formats=_FORMATS) as source:
            # Opening reads only the header: refuse the size before any pixel is allocated.
            if source.width * source.height > max_pixels:
                raise ImageError(f"image is {source.width}x{source.height}, too many pixels",
                                 code="image_too_large")
            image = _to_rgb(ImageOps.exif_transpose(source))
    except UnidentifiedImageError as exc:
        raise ImageError("not a supported image format", code="unsupported_media_type") from exc
    except Image.DecompressionBombError as exc:
        # Pillow's own ceiling, hit while opening when the header is absurd.
        raise ImageError("image has too many pixels", code="image_too_large") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError("image data is truncated or corrupt", code="invalid_image") from exc
    return DecodedImage(image, image.width, image.height, hashlib.sha256(data).hexdigest())


def _to_rgb(image: Image.Image) -> Image.Image:
    if not image.has_transparency_data:
        return image.convert("RGB")
    # Transparent product shots go on white, the way storefronts show them.
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


MIN_CROP_SIDE = 8


def crop_image(image: Image.Image, bbox: Sequence[float]) -> Image.Image:
    """The region [x1, y1, x2, y2] in pixels of the upright image; a box that makes no sense is a 422 saying why."""
    x1, y1, x2, y2 = bbox
    if x2 <= x1 or y2 <= y1:
        raise ImageError(f"bbox {list(bbox)} is inverted or empty: x2 must exceed x1 and y2 exceed y1",
                         code="bbox_inverted")
    if x1 < 0 or y1 < 0 or x2 > image.width or y2 > image.height:
        raise ImageError(f"bbox {list(bbox)} lies outside the {image.width}x{image.height} image",
                         code="bbox_out_of_bounds")
    if x2 - x1 < MIN_CROP_SIDE or y2 - y1 < MIN_CROP_SIDE:
        raise ImageError(f"bbox {list(bbox)} is smaller than {MIN_CROP_SIDE}x{MIN_CROP_SIDE} pixels",
                         code="bbox_too_small")
    return image.crop((round(x1), round(y1), round(x2), round(y2)))
