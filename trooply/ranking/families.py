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
from trooply.ranking.profiles import ScoringProfile
from trooply.vision.encoder import ClipEncoder


@dataclass(frozen=True)
class FamilyGuess:
    family: str
    confidence: float


class FamilyClassifier:
    def __init__(self, profiles: dict[str, ScoringProfile], encoder: Callable[[], ClipEncoder]) -> None:
        self.profiles = profiles
        self._encoder = encoder  # the model loads on first use; category look-ups never need it
        self._by_category = {c: name for name, p in profiles.items() for c in p.categories}
        self._names = list(profiles)
        self._prompt_matrix: np.ndarray | None = None
        self._lock = threading.Lock()

    def of_category(self, category: str | None) -> FamilyGuess | None:
        if not category:
            return None
        family = self._by_category.get(category.strip().lower())
        return FamilyGuess(family, 1.0) if family else None

    def classify(self, vector: np.ndarray) -> FamilyGuess:
        probabilities = self._encoder().scoring.choice_probabilities(self._prompts() @ vector)
        best = int(np.argmax(probabilities))
        return FamilyGuess(self._names[best], round(float(probabilities[best]), 4))

    def of_product(self, category: str | None, vector: np.ndarray) -> FamilyGuess:
        return self.of_category(category) or self.classify(vector)

    def warm_up(self) -> None:
        self._prompts()

    def _prompts(self) -> np.ndarray:
        # Computed once per model (the classifier lives as long as its encoder).
        with self._lock:
            if self._prompt_matrix is None:
                rows = []
                for name in self._names:
                    # Once per model, at start: background work, never refused as a query could be.
                    mean = self._encoder().encode_texts(self.profiles[name].prompts, priority=INGEST).mean(axis=0)
                    rows.append(mean / np.linalg.norm(mean))
                self._prompt_matrix = np.stack(rows).astype(np.float32)
            return self._prompt_matrix
