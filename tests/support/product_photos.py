"""Rendered product photos for the colour tests and bench/colour.py: a garment of one colour, with the things real
photos add (folds and shading, knit texture, a printed pattern, a model wearing it, JPEG noise)."""

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
SIZE = (240, 300)
SKIN_TONES: tuple[RGB, ...] = ((241, 194, 167), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 58, 40))
HAIR: RGB = (40, 28, 20)


def garment(rgb: RGB, background: RGB = (255, 255, 255), outline: RGB | None = None) -> Image.Image:
    """A T-shirt flat on a plain background."""
    image = Image.new("RGB", SIZE, background)
    ImageDraw.Draw(image).polygon(_shirt(), fill=rgb, outline=outline, width=2 if outline else 0)
    return image


def shaded(rgb: RGB, background: RGB = (255, 255, 255)) -> Image.Image:
    """The garment with folds: soft bands from 55% to 110% of its brightness, and a shadow down one side."""
    image = np.asarray(garment(rgb, background), dtype=np.float64)
    mask = _mask()
    columns = np.arange(SIZE[0])[None, :]
    rows = np.arange(SIZE[1])[:, None]
    light = 0.82 + 0.22 * np.sin(columns / 9.0) * np.cos(rows / 23.0) - 0.25 * (columns > SIZE[0] * 0.68)
    image[mask] = np.clip(image[mask] * light[mask][:, None], 0, 255)
    return Image.fromarray(image.astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))


def textured(rgb: RGB, background: RGB = (255, 255, 255), seed: int = 0) -> Image.Image:
    """A knit: a fine ribbed pattern and per-pixel yarn noise over the garment."""
    rng = np.random.default_rng(seed)
    image = np.asarray(garment(rgb, background), dtype=np.float64)
    mask = _mask()
    rib = 1.0 + 0.12 * np.sign(np.sin(np.arange(SIZE[0]) / 1.5))[None, :].repeat(SIZE[1], axis=0)
    noise = rng.normal(0.0, 10.0, image.shape)
    image[mask] = np.clip(image[mask] * rib[mask][:, None] + noise[mask], 0, 255)
    return Image.fromarray(image.astype(np.uint8))


def printed(rgb: RGB, print_rgb: RGB, background: RGB = (255, 255, 255)) -> Image.Image:
    """Stripes of a second colour over about a third of the garment."""
    image = np.asarray(garment(rgb, background)).copy()
    stripes = (np.arange(SIZE[1]) // 12 % 3 == 0)[:, None].repeat(SIZE[0], axis=1)
    image[_mask() & stripes] = print_rgb
    return Image.fromarray(image)


def on_model(rgb: RGB, skin: RGB = SKIN_TONES[1], background: RGB = (236, 236, 236)) -> Image.Image:
    """The garment worn: head, hair, neck, arms and legs around it, on a studio backdrop."""
    image = Image.new("RGB", SIZE, background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((100, 40, 140, 80), fill=skin)  # neck and face
    draw.ellipse((95, 5, 145, 55), fill=skin)
    draw.pieslice((90, 0, 150, 50), 180, 360, fill=HAIR)
    draw.rectangle((28, 110, 52, 230), fill=skin)  # arms
    draw.rectangle((188, 110, 212, 230), fill=skin)
    draw.rectangle((85, 240, 112, 300), fill=skin)  # legs
    draw.rectangle((128, 240, 155, 300), fill=skin)
    draw.polygon(_shirt(), fill=rgb)
    return image


def jpeg(image: Image.Image, quality: int = 35) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _shirt() -> list[tuple[int, int]]:
    return [(70, 60), (100, 55), (140, 55), (170, 60), (215, 100), (190, 125), (180, 115), (180, 250),
            (60, 250), (60, 115), (50, 125), (25, 100)]


def _mask() -> np.ndarray:
    image = Image.new("L", SIZE, 0)
    ImageDraw.Draw(image).polygon(_shirt(), fill=255)
    return np.asarray(image) > 0
