"""decode_image: sniffing, pixel limits, orientation and colour handling."""

import hashlib
import io

import pytest
from PIL import Image

from tests.support.images import (
    huge_dimension_png,
    jpeg_with_exif_orientation,
    solid_jpeg,
    solid_png,
    two_halves_png,
)
from trooply.errors import ImageError
from trooply.vision.decode import decode_image

MAX_PIXELS = 1_000_000


def decode_error(data: bytes, max_pixels: int = MAX_PIXELS) -> ImageError:
    with pytest.raises(ImageError) as caught:
        decode_image(data, max_pixels)
    return caught.value


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 8) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def test_decodes_png_to_rgb() -> None:
    decoded = decode_image(two_halves_png(20, 10, (255, 0, 0), (0, 0, 255)), MAX_PIXELS)
    assert (decoded.image.mode, decoded.width, decoded.height) == ("RGB", 20, 10)
    assert decoded.image.getpixel((0, 0)) == (255, 0, 0) and decoded.image.getpixel((19, 9)) == (0, 0, 255)


def test_content_hash_is_sha256_of_the_bytes_and_stable() -> None:
    data = solid_jpeg(16, 16, (10, 200, 30))
    first, second = decode_image(data, MAX_PIXELS), decode_image(data, MAX_PIXELS)
    assert first.content_hash == second.content_hash == hashlib.sha256(data).hexdigest()
    assert decode_image(solid_jpeg(16, 16, (200, 10, 30)), MAX_PIXELS).content_hash != first.content_hash


@pytest.mark.parametrize("data", [b"", b"<html>not an image</html>", b"GIF8" + bytes(10),
                                  b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"])
def test_non_image_bytes_are_unsupported(data: bytes) -> None:
    error = decode_error(data)
    assert (error.code, error.status) == ("unsupported_media_type", 422)


def test_declared_name_is_ignored_bytes_decide() -> None:
    # A JPEG is a JPEG whatever it was called; nothing but the bytes reaches the decoder.
    assert decode_image(solid_jpeg(8, 8), MAX_PIXELS).image.size == (8, 8)


def test_huge_header_is_refused_from_the_header_alone() -> None:
    # 30000x30000 RGB would be 2.7 GB; the file is a few dozen bytes and must stay that way in memory.
    data = huge_dimension_png(30000, 30000)
    assert len(data) < 100
    assert decode_error(data, max_pixels=10**12).code == "image_too_large"  # Pillow's bomb guard
    assert decode_error(data).code == "image_too_large"


def test_pixel_limit_checked_before_decoding() -> None:
    # Under Pillow's own ceiling, so only our limit stops it; the body is truncated, so loading would fail.
    assert decode_error(huge_dimension_png(5000, 5000)).code == "image_too_large"


def test_pixel_limit_is_inclusive() -> None:
    assert decode_image(solid_png(100, 100), max_pixels=10_000).width == 100
    assert decode_error(solid_png(101, 100), max_pixels=10_000).code == "image_too_large"


@pytest.mark.parametrize("data", [solid_jpeg(64, 64)[:300], solid_png(64, 64)[:60]])
def test_truncated_image_is_invalid(data: bytes) -> None:
    assert decode_error(data).code == "invalid_image"


def test_exif_orientation_is_applied() -> None:
    # Orientation 6 means "rotate 90° clockwise to view": the stored left (red) half ends up on top.
    decoded = decode_image(jpeg_with_exif_orientation(40, 20, 6), MAX_PIXELS)
    assert (decoded.width, decoded.height) == (20, 40)
    assert close(decoded.image.getpixel((10, 5)), (255, 0, 0))
    assert close(decoded.image.getpixel((10, 35)), (0, 0, 255))


def test_orientation_1_leaves_the_image_alone() -> None:
    assert decode_image(jpeg_with_exif_orientation(40, 20, 1), MAX_PIXELS).image.size == (40, 20)


def test_rgba_is_composited_over_white() -> None:
    image = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    image.putpixel((1, 0), (255, 0, 0, 128))
    decoded = decode_image(_png(image), MAX_PIXELS)
    assert decoded.image.mode == "RGB"
    assert decoded.image.getpixel((0, 0)) == (255, 255, 255)
    assert close(decoded.image.getpixel((1, 0)), (255, 127, 127), tolerance=2)


def test_palette_transparency_is_composited_over_white() -> None:
    image = Image.new("P", (2, 1), 0)
    image.putpalette([0, 0, 0, 0, 255, 0])
    image.putpixel((1, 0), 1)
    buffer = io.BytesIO()
    image.save(buffer, format="GIF", transparency=0)
    decoded = decode_image(buffer.getvalue(), MAX_PIXELS)
    assert [decoded.image.getpixel((x, 0)) for x in range(2)] == [(255, 255, 255), (0, 255, 0)]


def test_grayscale_becomes_rgb() -> None:
    decoded = decode_image(_png(Image.new("L", (3, 3), 77)), MAX_PIXELS)
    assert decoded.image.mode == "RGB" and decoded.image.getpixel((1, 1)) == (77, 77, 77)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
