"""decode_image: sniffing, pixel limits, orientation, colour handling, decoding to the size needed; crop_image."""

import hashlib
import io
import math
import subprocess
import sys
import threading

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
from trooply.vision.decode import DecodedImage, crop_image, decode_image, large_decode_slots

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


def halves(w: int, h: int, fmt: str, **params) -> bytes:
    """Left half red, right half blue."""
    image = Image.new("RGB", (w, h), (255, 0, 0))
    image.paste((0, 0, 255), (w // 2, 0, w, h))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_large_images_decode_to_the_limit_and_report_the_original_size(fmt: str) -> None:
    data = halves(4000, 3000, fmt)
    decoded = decode_image(data, 10**8, max_side=500)
    assert decoded.image.size == (500, 375) and (decoded.width, decoded.height) == (4000, 3000)
    assert decoded.scale == (0.125, 0.125)
    assert decoded.content_hash == hashlib.sha256(data).hexdigest()
    assert close(decoded.image.getpixel((100, 200)), (255, 0, 0))
    assert close(decoded.image.getpixel((400, 200)), (0, 0, 255))


def peak_rss_mib(path, max_side: int | None) -> float:
    """Peak memory of a fresh process that decodes the file once."""
    # VmHWM belongs to the new program; ru_maxrss would carry over the test runner's own peak.
    code = ("import re, sys; from trooply.vision.decode import decode_image; "
            f"decode_image(open(sys.argv[1], 'rb').read(), 10**9, {max_side}); "
            "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout) / 1024


def test_a_large_jpeg_is_never_decoded_whole(tmp_path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(halves(8000, 6000, "JPEG", quality=30))  # 144 MB of RGB when decoded whole
    decoded = decode_image(path.read_bytes(), 10**8, max_side=1000)
    assert decoded.image.size == (1000, 750) and (decoded.width, decoded.height) == (8000, 6000)
    assert peak_rss_mib(path, 1000) + 100 < peak_rss_mib(path, None)


def test_images_within_the_limit_and_an_unlimited_decode_keep_every_pixel() -> None:
    assert decode_image(halves(400, 300, "PNG"), MAX_PIXELS, max_side=400).image.size == (400, 300)
    assert decode_image(halves(4000, 3000, "JPEG"), 10**8, max_side=None).image.size == (4000, 3000)


def test_orientation_is_applied_to_the_reduced_image_and_the_original_size_is_upright() -> None:
    decoded = decode_image(jpeg_with_exif_orientation(4000, 2000, 6), 10**8, max_side=400)
    assert (decoded.width, decoded.height) == (2000, 4000) and decoded.image.size == (200, 400)
    assert close(decoded.image.getpixel((100, 50)), (255, 0, 0))
    assert close(decoded.image.getpixel((100, 350)), (0, 0, 255))


@pytest.mark.parametrize("size, reduced", [((39000, 1), (1024, 1)), ((1, 39000), (1, 1024)), ((2, 2), (2, 2))])
def test_degenerate_shapes_keep_at_least_one_pixel_each_way(size, reduced) -> None:
    decoded = decode_image(solid_png(*size), 10**8, max_side=1024)
    assert decoded.image.size == reduced and (decoded.width, decoded.height) == size


def test_a_large_decode_waits_for_a_slot_and_a_small_one_does_not() -> None:
    large, small = halves(3000, 2000, "PNG"), halves(300, 200, "PNG")
    slots = large_decode_slots(1)
    done = threading.Event()
    with slots:
        worker = threading.Thread(target=lambda: (decode_image(large, 10**8, 500, large_decodes=1), done.set()))
        worker.start()
        assert decode_image(small, 10**8, 500, large_decodes=1).image.size == (300, 200)
        assert not done.wait(0.5), "decoded while every slot was taken"
    assert done.wait(10)
    worker.join()


def decoded_halves(w: int = 4000, h: int = 2000, max_side: int = 1000) -> DecodedImage:
    return decode_image(halves(w, h, "PNG"), 10**8, max_side=max_side)


def test_crop_takes_a_box_in_original_pixels_and_crops_the_reduced_image() -> None:
    decoded = decoded_halves()
    right = crop_image(decoded, [2100, 100, 3900, 1900])
    assert right.size == (450, 450) and close(right.getpixel((225, 225)), (0, 0, 255), tolerance=2)
    assert crop_image(decoded, [0, 0, 4000, 2000]).size == (1000, 500)


def test_crop_bounds_are_the_original_image() -> None:
    decoded = decoded_halves()
    with pytest.raises(ImageError) as caught:
        crop_image(decoded, [3000, 0, 4001, 100])
    assert caught.value.code == "bbox_out_of_bounds" and "4000x2000" in caught.value.message


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_coordinate_is_an_invalid_bbox(bad: float) -> None:
    decoded = decoded_halves()
    for position in range(4):
        bbox = [10.0, 10.0, 100.0, 100.0]
        bbox[position] = bad
        with pytest.raises(ImageError) as caught:
            crop_image(decoded, bbox)
        assert (caught.value.code, caught.value.status) == ("bbox_invalid", 422)


def test_the_smallest_box_allowed_still_crops_at_least_one_reduced_pixel() -> None:
    decoded = decode_image(solid_png(39000, 10), 10**8, max_side=1024)
    assert decoded.image.size == (1024, 1)
    crop = crop_image(decoded, [38990, 1, 38998, 9])
    assert crop.size == (1, 1) and crop.getpixel((0, 0)) == (255, 0, 0)
