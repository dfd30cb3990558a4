"""How a model turns cosine similarities into probabilities: at its own learned logit scale and, for the
SigLIP family, its learned bias.

CLIP was trained with a softmax over a batch (`scale · cos`, scale ~100): its scores only say which of
several texts fits best. SigLIP was trained with a sigmoid per pair (`σ(scale · cos + bias)`, bias ~-10):
each pair gets an absolute match probability. Both are read from the loaded model, never assumed.

Choosing among options (a family, a detection class or the background) always yields a distribution over
those options: CLIP's softmax, or SigLIP's match probabilities normalised over the options. Either way a
confidence is the model's share of belief in its pick, so the profiles' gate thresholds mean the same thing
under every model; and a SigLIP model that finds two options both matching says so (about half each)
instead of a softmax sharpening a small logit difference.
"""

from dataclasses import dataclass
from typing import Final, Literal, cast

import numpy as np
import torch

SOFTMAX: Final = "softmax"
SIGMOID: Final = "sigmoid"


@dataclass(frozen=True)
class ZeroShotScoring:
    kind: Literal["softmax", "sigmoid"]
    logit_scale: float
    logit_bias: float = 0.0

    @classmethod
    def of(cls, model: torch.nn.Module) -> "ZeroShotScoring":
        """The scale (and bias, where the model has one) the model was trained at."""
        logit_scale = cast(torch.Tensor, model.logit_scale)  # a Parameter on every open_clip model
        scale = float(logit_scale.detach().float().exp().reshape(-1)[0])
        bias = getattr(model, "logit_bias", None)
        if bias is None:
            return cls(SOFTMAX, scale)
        return cls(SIGMOID, scale, float(bias.detach().float().reshape(-1)[0]))

    def logits(self, similarities: np.ndarray) -> np.ndarray:
        return self.logit_scale * np.asarray(similarities, np.float64) + self.logit_bias

    def choice_probabilities(self, similarities: np.ndarray) -> np.ndarray:
        """One distribution per row over mutually exclusive options (the last axis)."""
        logits = self.logits(similarities)
        if self.kind == SIGMOID:
            # σ(z_i) / Σ σ(z_j), as a softmax of log σ(z): stable however hopeless every option is.
            return _softmax(_log_sigmoid(logits))
        return _softmax(logits)

    def relevance(self, similarities: np.ndarray) -> np.ndarray:
        """How well each text fits each image, in [0, 1]: a SigLIP model's own match probability; CLIP has no
        absolute scale for one pair, so its cosine mapped to [0, 1] (as the ranking's `clip` signal)."""
        if self.kind == SIGMOID:
            return np.exp(_log_sigmoid(self.logits(similarities)))
        return np.clip((np.asarray(similarities, np.float64) + 1.0) / 2.0, 0.0, 1.0)

    def describe(self) -> dict[str, str | float]:
        described: dict[str, str | float] = {"kind": self.kind, "logit_scale": round(self.logit_scale, 4)}
        if self.kind == SIGMOID:
            described["logit_bias"] = round(self.logit_bias, 4)
        return described


def _softmax(logits: np.ndarray) -> np.ndarray:
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def _log_sigmoid(logits: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -logits)
