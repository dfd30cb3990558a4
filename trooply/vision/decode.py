"""Decode untrusted image bytes into an upright RGB image, refusing oversized or unsupported input."""

import hashlib
import io
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
