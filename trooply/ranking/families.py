"""Which product family a query or a product belongs to, and how sure we are.

A product's merchant category is looked up in the profiles' category lists first (confidence 1);
otherwise, like every query, it is classified zero-shot against each family's mean prompt embedding, at the
model's own logit scale (and bias, for SigLIP models): a distribution over the families, whatever the model,
so the profiles' gate thresholds keep their meaning (trooply.vision.scoring).
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from trooply.batching import INGEST
from trooply.errors import ServiceUnavailable
from trooply.ranking.profiles import ScoringProfile
from trooply.vectors import VectorSpace
from trooply.vision.encoder import ClipEncoder
from trooply.vision.scoring import ZeroShotScoring


@dataclass(frozen=True)
class FamilyGuess:
    family: str
    confidence: float
    # How it was chosen: request (the caller named it), query (a word of the query named it), product (the
    # family stored with the product a similar search starts from), category (the product's category), model
    # (the zero-shot classifier).
    source: str = "model"


@dataclass(frozen=True)
class _PromptEmbeddings:
    """Each family's mean prompt embedding in one model's space, and that model's scoring."""

    matrix: np.ndarray
    scoring: ZeroShotScoring


class FamilyClassifier:
    def __init__(self, profiles: dict[str, ScoringProfile], encoder: Callable[[], ClipEncoder]) -> None:
        self.profiles = profiles
        self._encoder = encoder  # the active model, loaded on first use; category look-ups never need it
        self._by_category = {c: name for name, p in profiles.items() for c in p.categories}
        self._names = list(profiles)
        self._embedded: dict[VectorSpace, _PromptEmbeddings] = {}  # per model: a migration brings a second one
        self._lock = threading.Lock()

    def family_of_category(self, category: str | None) -> FamilyGuess | None:
        if not category:
            return None
        family = self._by_category.get(category.strip().lower())
        return FamilyGuess(family, 1.0, "category") if family else None

    def classify(self, vector: np.ndarray, encoder: ClipEncoder | None = None) -> FamilyGuess:
        """`encoder`: the model that made the vector; the active one when not given."""
        prompts = self._for_vector(encoder or self._encoder(), vector)
        probabilities = prompts.scoring.choice_probabilities(prompts.matrix @ vector)
        best = int(np.argmax(probabilities))
        return FamilyGuess(self._names[best], round(float(probabilities[best]), 4))

    def family_of_product(self, category: str | None, vector: np.ndarray,
                          encoder: ClipEncoder | None = None) -> FamilyGuess:
        return self.family_of_category(category) or self.classify(vector, encoder)

    def warm_up(self) -> None:
        self._prompts()

    def _for_vector(self, encoder: ClipEncoder, vector: np.ndarray) -> _PromptEmbeddings:
        """A query encoded a moment before this process saw a model cutover is classified in its own space."""
        if len(vector) != encoder.space.size:
            with self._lock:
                earlier = [p for space, p in self._embedded.items() if space.size == len(vector)]
            if not earlier:  # a model this process never embedded prompts for: the request raced a switch
                raise ServiceUnavailable("the model changed while this request ran; send it again",
                                         code="model_switched", details={"retry_after": 1})
            return earlier[0]
        return self._embeddings(encoder)

    def _prompts(self, encoder: ClipEncoder | None = None) -> np.ndarray:
        return self._embeddings(encoder or self._encoder()).matrix

    def _embeddings(self, encoder: ClipEncoder) -> _PromptEmbeddings:
        # Computed once per model, at start or when a migration brings a new one.
        with self._lock:
            if encoder.space not in self._embedded:
                rows = []
                for name in self._names:
                    # Background work, never refused as a query could be.
                    mean = encoder.encode_texts(self.profiles[name].prompts, priority=INGEST).mean(axis=0)
                    rows.append(mean / np.linalg.norm(mean))
                self._embedded[encoder.space] = _PromptEmbeddings(np.stack(rows).astype(np.float32), encoder.scoring)
            return self._embedded[encoder.space]
