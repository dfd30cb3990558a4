"""Our preprocessing (a reduced decode, then the model's own open_clip transform, run in parallel) gives the
model what open_clip's transform of the full image gives it."""

import io

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from trooply.batching import BatchPolicy
from trooply.vision.decode import decode_image
from trooply.vision.encoder import ClipEncoder


def photo_jpeg(width: int, height: int, seed: int) -> bytes:
    """Smooth colour fields with texture, like a product photo, as a camera-sized JPEG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [127 + 100 * np.sin(x / rng.uniform(80, 400) + phase) * np.cos(y / rng.uniform(80, 400))
                for phase in rng.uniform(0, 3, 3)]
    pixels = np.stack(channels, -1) + rng.normal(0, 6, (height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def encoder():
    encoder = ClipEncoder.load("trooply-test-tiny", "random", device="cpu", policy=BatchPolicy(max_batch=8),
                          preprocess_workers=2)
    yield encoder
    encoder.close()


@pytest.mark.parametrize("size", [(3000, 2000), (1200, 1600), (640, 480)])
def test_reduced_decode_and_parallel_preprocessing_match_open_clips_transform(encoder, size):
    data = [photo_jpeg(*size, seed) for seed in range(3)]
    full = [Image.open(io.BytesIO(d)).convert("RGB") for d in data]
    reduced = [decode_image(d, 40_000_000).image for d in data]
    _, _, reference_transform = open_clip.create_model_and_transforms("trooply-test-tiny", pretrained=None)

    theirs = torch.stack([reference_transform(image) for image in full])
    ours = torch.stack([encoder.preprocess(image) for image in reduced])
    difference = (theirs - ours).abs()
    print(f"{size}: max abs {float(difference.max()):.3f}, mean abs {float(difference.mean()):.4f}")
    # Normalised pixel units (about -2..2). JPEG draft mode scales in the DCT domain (3000x2000 gives a mean
    # 0.053 here) and the reduce rounds the aspect ratio to whole pixels, so the model's centre crop lands up
    # to a pixel apart: the outermost columns differ most, the picture as a whole little, the vector not at all.
    assert float(difference.max()) < 0.6
    assert float(difference.mean()) < 0.08

    with torch.inference_mode():
        reference = torch.nn.functional.normalize(encoder.model.encode_image(theirs), dim=-1).numpy()
    vectors = encoder.encode_images(reduced)  # preprocessed in parallel on the pool, one batched pass
    cosines = (vectors * reference).sum(axis=1)
    print(f"{size}: cosine to open_clip's own preprocessing of the full image: min {cosines.min():.5f}")
    assert cosines.min() >= 0.999, cosines
