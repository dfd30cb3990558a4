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


def product_png(shape: str, rgb: RGB, size: int = 240, background: RGB = (246, 246, 244)) -> bytes:
    """A product-like photo: one coloured object (sneaker, bag, shirt, lamp or mug) on a plain background."""
    from PIL import ImageDraw

    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    def box(*xy: float) -> list[int]:  # the outlines below are drawn on a 240 px canvas
        return [round(v * size / 240) for v in xy]

    darker = tuple(max(0, c - 60) for c in rgb)
    if shape == "sneaker":
        draw.polygon(box(30, 150, 60, 100, 130, 95, 200, 140, 215, 165, 30, 170), fill=rgb)
        draw.rectangle(box(28, 168, 216, 182), fill=(250, 250, 250), outline=darker)
    elif shape == "bag":
        draw.arc(box(80, 40, 160, 120), 180, 360, fill=darker, width=round(8 * size / 240))
        draw.rounded_rectangle(box(50, 80, 190, 200), radius=round(14 * size / 240), fill=rgb)
    elif shape == "shirt":
        draw.polygon(box(80, 40, 160, 40, 205, 80, 185, 105, 165, 92, 165, 205, 75, 205, 75, 92, 55, 105, 35, 80),
                     fill=rgb)
    elif shape == "lamp":
        draw.polygon(box(85, 50, 155, 50, 180, 120, 60, 120), fill=rgb)
        draw.rectangle(box(115, 120, 125, 190), fill=darker)
        draw.rectangle(box(80, 190, 160, 202), fill=darker)
    else:  # mug
        draw.rounded_rectangle(box(60, 70, 160, 190), radius=round(10 * size / 240), fill=rgb)
        draw.arc(box(140, 95, 195, 160), 270, 90, fill=rgb, width=round(12 * size / 240))
    return _encode(image, "PNG")
