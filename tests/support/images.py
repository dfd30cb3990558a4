"""Small image files built in memory for tests."""

import io
import struct
import zlib

from PIL import Image

RGB = tuple[int, int, int]


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _halves(w: int, h: int, left_rgb: RGB, right_rgb: RGB) -> Image.Image:
    image = Image.new("RGB", (w, h), left_rgb)
    image.paste(right_rgb, (w // 2, 0, w, h))
    return image


def solid_png(w: int, h: int, rgb: RGB = (255, 0, 0)) -> bytes:
    return _encode(Image.new("RGB", (w, h), rgb), "PNG")


def solid_jpeg(w: int, h: int, rgb: RGB = (255, 0, 0)) -> bytes:
    return _encode(Image.new("RGB", (w, h), rgb), "JPEG", quality=95)


def two_halves_png(w: int, h: int, left_rgb: RGB, right_rgb: RGB) -> bytes:
    return _encode(_halves(w, h, left_rgb, right_rgb), "PNG")


def huge_dimension_png(w: int = 30000, h: int = 30000) -> bytes:
    """A PNG whose header claims w x h but whose file is tiny; nothing here allocates the pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00"))
            + chunk(b"IEND", b""))


def jpeg_with_exif_orientation(w: int, h: int, orientation: int) -> bytes:
    """Stored w x h, left half red and right half blue, with the EXIF Orientation tag set."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(_halves(w, h, (255, 0, 0), (0, 0, 255)), "JPEG", quality=95, exif=exif.tobytes())
