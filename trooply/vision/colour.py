"""Compact colour and shape signals computed once at ingest and stored in the payload."""

import numpy as np
from PIL import Image
from skimage.color import rgb2lab

# 4 lightness x 4 a* x 4 b* bins in CIE Lab: perceptual, and small enough for every payload.
HIST_BINS = (4, 4, 4)
_LAB_RANGE = ((0.0, 100.0), (-80.0, 80.0), (-80.0, 80.0))
_THUMB = (64, 64)


def colour_histogram(image: Image.Image) -> list[float]:
    thumb = np.asarray(image.convert("RGB").resize(_THUMB, Image.Resampling.BILINEAR), dtype=np.float64) / 255.0
    lab = rgb2lab(thumb).reshape(-1, 3)
    for channel, (low, high) in enumerate(_LAB_RANGE):
        np.clip(lab[:, channel], low, high - 1e-6, out=lab[:, channel])
    hist, _ = np.histogramdd(lab, bins=HIST_BINS, range=_LAB_RANGE)
    hist = hist.ravel() / hist.sum()
    return [round(float(v), 4) for v in hist]


def aspect_ratio(width: int, height: int) -> float:
    return round(width / height, 4)
