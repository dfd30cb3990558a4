"""Zero-shot scores at the model's own logit scale and bias: CLIP's softmax, SigLIP's sigmoid, both as a
distribution over options when choosing, and where the classifier, the detector and text relevance use them."""

import zlib

import numpy as np
import pytest

from trooply.ranking.families import FamilyClassifier
from trooply.ranking.profiles import DEFAULT_PROFILES_DIR, load_profiles
from trooply.vectors import VectorSpace
from trooply.vision.detection import BACKGROUND_PROMPTS, CLASS_PROMPTS, ZeroShotDetector
from trooply.vision.scoring import SIGMOID, SOFTMAX, ZeroShotScoring

CLIP = ZeroShotScoring(SOFTMAX, 100.0)
SIGLIP = ZeroShotScoring(SIGMOID, 117.3, -12.7)


def softmax(logits: np.ndarray) -> np.ndarray:
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-logits))


def test_clip_chooses_by_softmax_at_its_own_scale():
    cosines = np.array([[0.31, 0.25, 0.18], [0.2, 0.2, 0.2]])
    np.testing.assert_allclose(CLIP.choice_probabilities(cosines), softmax(100 * cosines))
    np.testing.assert_allclose(ZeroShotScoring(SOFTMAX, 14.3).choice_probabilities(cosines), softmax(14.3 * cosines))


def test_siglip_chooses_by_its_match_probabilities_normalised_over_the_options():
    cosines = np.array([0.20, 0.19, 0.01])
    expected = sigmoid(117.3 * cosines - 12.7)
    np.testing.assert_allclose(SIGLIP.choice_probabilities(cosines), expected / expected.sum())
    # Both of the first two match (σ ≈ 1): about half each, where a softmax at the same scale would be sure.
    assert SIGLIP.choice_probabilities(cosines)[0] < 0.6 < softmax(117.3 * cosines)[0]
    # Where nothing matches, the bias cancels out: it is the softmax of the logits.
    hopeless = np.array([-0.5, -0.7, -0.9])
    np.testing.assert_allclose(SIGLIP.choice_probabilities(hopeless), softmax(117.3 * hopeless), rtol=1e-9)


def test_probabilities_stay_finite_and_sum_to_one_at_any_logit():
    for scoring in (CLIP, SIGLIP, ZeroShotScoring(SIGMOID, 1e4, -1e4)):
        for cosines in (np.array([[1.0, -1.0, 0.0]]), np.array([[-1.0, -1.0, -1.0]]), np.array([[1.0, 1.0, 1.0]])):
            probabilities = scoring.choice_probabilities(cosines)
            assert np.isfinite(probabilities).all()
            np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0)


def test_relevance_is_siglips_match_probability_and_clips_mapped_cosine():
    cosines = np.array([[0.25, -0.1], [0.05, 1.0]])
    np.testing.assert_allclose(SIGLIP.relevance(cosines), sigmoid(117.3 * cosines - 12.7))
    np.testing.assert_allclose(CLIP.relevance(cosines), (cosines + 1) / 2)
    assert SIGLIP.describe() == {"kind": "sigmoid", "logit_scale": 117.3, "logit_bias": -12.7}
    assert CLIP.describe() == {"kind": "softmax", "logit_scale": 100.0}


class PromptEncoder:
    """Stands in for the encoder: each prompt a fixed random unit vector, and a model's scoring."""

    def __init__(self, scoring: ZeroShotScoring, dim: int = 16) -> None:
        self.scoring, self.dim = scoring, dim
        self.space = VectorSpace("prompt-stand-in", dim)

    def encode_texts(self, texts, priority=None) -> np.ndarray:
        rows = [np.random.default_rng(zlib.crc32(text.encode())).standard_normal(self.dim) for text in texts]
        return np.stack([row / np.linalg.norm(row) for row in rows]).astype(np.float32)


def prompt_matrix(encoder: PromptEncoder, groups: list[list[str]]) -> np.ndarray:
    """One row per group of prompts: their mean embedding, normalised (what the zero-shot scorers compare to)."""
    rows = [encoder.encode_texts(prompts).mean(axis=0) for prompts in groups]
    return np.stack([row / np.linalg.norm(row) for row in rows])


@pytest.mark.parametrize("scoring", [CLIP, SIGLIP, ZeroShotScoring(SOFTMAX, 14.3)])
def test_family_classifier_and_detector_score_at_the_encoders_scale_and_bias(scoring):
    encoder = PromptEncoder(scoring)
    profiles = load_profiles(DEFAULT_PROFILES_DIR)
    classifier = FamilyClassifier(profiles, lambda: encoder)
    prompts = prompt_matrix(encoder, [profile.prompts for profile in profiles.values()])
    vector = prompts[list(profiles).index("footwear")] + 0.3 * prompts[list(profiles).index("apparel")]
    vector /= np.linalg.norm(vector)
    guess = classifier.classify(vector)
    expected = scoring.choice_probabilities(prompts @ vector)
    assert guess.family == "footwear" and guess.confidence == pytest.approx(expected.max(), abs=1e-4)

    detector = ZeroShotDetector(lambda: encoder)
    crops = np.stack([vector, -vector])
    probabilities = detector.class_probabilities(crops)
    classes = prompt_matrix(encoder, [CLASS_PROMPTS[i] for i in sorted(CLASS_PROMPTS)] + [BACKGROUND_PROMPTS])
    np.testing.assert_allclose(probabilities, scoring.choice_probabilities(crops @ classes.T), rtol=1e-5)
    assert probabilities.shape == (2, 11)
