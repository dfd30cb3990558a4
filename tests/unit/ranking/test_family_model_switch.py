"""Family classification of a vector from a model this process never embedded prompts for (a request that
raced a model cutover) is a 503 to retry, never a shape error (500)."""

import numpy as np
import pytest

from trooply.errors import ServiceUnavailable
from trooply.ranking.families import FamilyClassifier
from trooply.ranking.profiles import DEFAULT_PROFILES_DIR, load_profiles
from trooply.vision.encoder import ClipEncoder


def test_a_vector_of_an_unknown_model_is_a_retryable_503() -> None:
    encoder = ClipEncoder.load("trooply-test-tiny", "random", device="cpu")
    classifier = FamilyClassifier(load_profiles(DEFAULT_PROFILES_DIR), lambda: encoder)
    assert classifier.classify(encoder.encode_text("running shoes")).confidence > 0
    other = np.ones(encoder.space.size - 24, dtype=np.float32) / np.sqrt(encoder.space.size - 24)
    with pytest.raises(ServiceUnavailable) as refused:
        classifier.classify(other)
    assert refused.value.code == "model_switched" and refused.value.details == {"retry_after": 1}
