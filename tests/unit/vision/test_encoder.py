import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from prometheus_client import REGISTRY

from trooply.batching import BatchPolicy
from trooply.vectors import VectorSpace
from trooply.vision.encoder import ClipEncoder

MODEL = "trooply-test-tiny"


def image_passes(model: str) -> float:
    return REGISTRY.get_sample_value("trooply_runtime_batch_size_count", {"model": model, "kind": "image"}) or 0


@pytest.fixture(scope="module")
def encoder() -> ClipEncoder:
    return ClipEncoder.load(MODEL, "random", device="cpu")


def noise_images(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)) for _ in range(n)]


def test_shapes_dtype_and_unit_norm(encoder: ClipEncoder) -> None:
    images = encoder.encode_images(noise_images(3))
    text = encoder.encode_text("red leather handbag")
    texts = encoder.encode_texts(["a", "b"])
    assert images.shape == (3, 64) and images.dtype == np.float32
    assert text.shape == (64,) and text.dtype == np.float32
    assert texts.shape == (2, 64) and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text), 1, atol=1e-5)
    assert encoder.encode_images([]).shape == (0, 64)


def test_space(encoder: ClipEncoder) -> None:
    assert encoder.space == VectorSpace(name="trooply-test-tiny__random", size=64)


def test_random_init_is_deterministic_and_keeps_caller_rng(encoder: ClipEncoder) -> None:
    state = torch.random.get_rng_state()
    other = ClipEncoder.load(MODEL, "random", device="cpu")
    assert torch.equal(torch.random.get_rng_state(), state)
    images = noise_images(2)
    np.testing.assert_array_equal(other.encode_images(images), encoder.encode_images(images))
    np.testing.assert_array_equal(other.encode_text("blue shoes"), encoder.encode_text("blue shoes"))


def test_random_init_is_deterministic_across_processes(encoder: ClipEncoder) -> None:
    code = ("from trooply.vision.encoder import ClipEncoder; import sys; "
            "sys.stdout.write(ClipEncoder.load('trooply-test-tiny', 'random', device='cpu')"
            ".encode_text('blue shoes').tobytes().hex())")
    repo = Path(__file__).resolve().parents[3]  # `python -c` puts its cwd on sys.path
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True,
                         check=True).stdout
    theirs = np.frombuffer(bytes.fromhex(out), dtype=np.float32)
    np.testing.assert_allclose(theirs, encoder.encode_text("blue shoes"), atol=1e-6)


def test_text_cache(encoder: ClipEncoder) -> None:
    first = encoder.encode_text("Green  Summer Dress ")
    count = encoder.texts_encoded
    second = encoder.encode_text("green summer\tdress")
    assert encoder.texts_encoded == count
    np.testing.assert_array_equal(first, second)
    assert not second.flags.writeable
    with pytest.raises(ValueError):
        second[0] = 0.0


def test_text_cache_evicts_least_recently_used() -> None:
    small = ClipEncoder.load(MODEL, "random", device="cpu", text_cache_size=2)
    for text in ("a", "b", "a", "c"):  # "b" is least recently used when "c" arrives
        small.encode_text(text)
    assert small.texts_encoded == 3
    small.encode_text("a")
    assert small.texts_encoded == 3
    small.encode_text("b")
    assert small.texts_encoded == 4


def test_batching_matches_single_images() -> None:
    batched = ClipEncoder.load(MODEL, "random", device="cpu", policy=BatchPolicy(max_batch=2))
    images = noise_images(5, seed=1)
    before = batched.images_encoded
    together = batched.encode_images(images)
    assert batched.images_encoded == before + 5
    alone = np.concatenate([batched.encode_images([image]) for image in images])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    batched.close()


def test_concurrent_queries_share_forward_passes_and_match_unbatched_vectors() -> None:
    encoder = ClipEncoder.load(MODEL, "random", device="cpu", policy=BatchPolicy(max_batch=8, max_wait_s=0.05))
    images = noise_images(8, seed=2)
    alone = [encoder.encode_images([image])[0] for image in images]
    passes_before = image_passes(MODEL)
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda image: encoder.encode_images([image])[0], images))
    assert image_passes(MODEL) - passes_before < 8  # coalesced
    for mine, reference in zip(together, alone, strict=True):
        np.testing.assert_allclose(mine, reference, atol=1e-5)
    encoder.close()


def test_different_images_give_different_vectors(encoder: ClipEncoder) -> None:
    vectors = encoder.encode_images(noise_images(2) + [Image.new("RGB", (50, 50), "red")])
    similarity = vectors @ vectors.T
    assert similarity[0, 1] < 0.999 and similarity[0, 2] < 0.999 and similarity[1, 2] < 0.999


def test_local_checkpoint(encoder: ClipEncoder, tmp_path) -> None:
    path = tmp_path / "tiny-ckpt.pt"
    torch.save(encoder.model.state_dict(), path)
    loaded = ClipEncoder.load(MODEL, str(path), device="cpu")
    assert loaded.space == VectorSpace(name="trooply-test-tiny__tiny-ckpt", size=64)
    np.testing.assert_array_equal(loaded.encode_text("blue shoes"), encoder.encode_text("blue shoes"))


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no-such-model"):
        ClipEncoder.load("no-such-model", "random", device="cpu")


def test_unknown_pretrained_tag_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no-such-tag"):
        ClipEncoder.load(MODEL, "no-such-tag", device="cpu")


def test_concurrent_calls_agree_and_count_exactly(encoder: ClipEncoder) -> None:
    images = noise_images(3, seed=2)
    expected = encoder.encode_images(images)
    before = encoder.images_encoded
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: encoder.encode_images(images), range(8)))
    assert encoder.images_encoded == before + 8 * 3
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)
