"""Scoring profiles: data files under profiles/, validated at start-up, one per product family."""

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

SIGNALS = ("clip", "colour", "aspect", "category", "popularity", "rules", "keywords")
_PACKAGE = Path(__file__).resolve().parent.parent
# A wheel carries the top-level profiles/ inside the package (pyproject.toml); a source checkout has it beside it.
DEFAULT_PROFILES_DIR = _PACKAGE / "_profiles" if (_PACKAGE / "_profiles").is_dir() else _PACKAGE.parent / "profiles"


class ProfileError(Exception):
    """A profile file that cannot be used; the message names the file and the field."""


class SignalWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clip: float = Field(ge=0, le=1)
    colour: float = Field(ge=0, le=1)
    aspect: float = Field(ge=0, le=1)
    category: float = Field(ge=0, le=1)
    popularity: float = Field(ge=0, le=1)
    rules: float = Field(ge=0, le=1)
    # clip + keywords is the weight of relevance: a query's keyword_weight splits it between pictures and words.
    keywords: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> "SignalWeights":
        total = sum(getattr(self, name) for name in SIGNALS)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1, they sum to {total:.4f}")
        return self


class Gates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query_confidence: float = Field(ge=0, le=1)
    candidate_confidence: float = Field(ge=0, le=1)
    # When the gate would drop every candidate, show the best of them (marked relaxed) rather than nothing.
    relax_when_empty: bool = True


class ScoringProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    candidate_pool: int = Field(30, ge=1, le=500)
    keyword_weight: float = Field(0.3, ge=0, le=1)  # the default share of words in clip + keywords
    weights: SignalWeights
    gates: Gates
    prompts: list[str] = Field(min_length=1)
    # Words a shopper types for this family beyond the category names ("sneaker", "tote"): the query reader's.
    query_words: list[str] = Field(default_factory=list)
    categories: list[str] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _keywords_from_clip(cls, data: Any) -> Any:
        """A profile written before the keywords signal: its clip weight is split by its keyword_weight."""
        if isinstance(data, dict) and isinstance(data.get("weights"), dict) and "keywords" not in data["weights"]:
            keyword_weight, clip = data.get("keyword_weight", 0.3), data["weights"].get("clip")
            if isinstance(clip, (int, float)) and isinstance(keyword_weight, (int, float)):
                data = {**data, "weights": {**data["weights"], "clip": clip * (1 - keyword_weight),
                                            "keywords": clip * keyword_weight}}
        return data

    @field_validator("weights")
    @classmethod
    def _split_by_keyword_weight(cls, weights: SignalWeights, info: ValidationInfo) -> SignalWeights:
        """The profile's own weights show the split of clip + keywords at its default keyword_weight."""
        keyword_weight = info.data.get("keyword_weight")
        relevance = weights.clip + weights.keywords
        if keyword_weight is not None and abs(weights.keywords - relevance * keyword_weight) > 0.005:
            raise ValueError(f"keywords must be keyword_weight x (clip + keywords) = {relevance * keyword_weight:.3f}")
        return weights

    @field_validator("categories", "query_words")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value]


def load_profiles(directory: Path = DEFAULT_PROFILES_DIR) -> dict[str, ScoringProfile]:
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ProfileError(f"no profile files (*.yaml) in {directory}")
    profiles: dict[str, ScoringProfile] = {}
    owner: dict[str, str] = {}  # word -> the file that maps it
    for path in files:
        profile = _load_one(path)
        for field in ("categories", "query_words"):
            for word in getattr(profile, field):
                if word in owner:
                    raise ProfileError(f"{path.name}: field '{field}': {word!r} is already mapped by {owner[word]}")
                owner[word] = path.name
        profiles[profile.name] = profile
    return profiles


def _load_one(path: Path) -> ScoringProfile:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ProfileError(f"{path.name}: not valid YAML ({error})") from error
    if not isinstance(data, dict):
        raise ProfileError(f"{path.name}: must be a mapping of fields")
    try:
        profile = ScoringProfile.model_validate(data)
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(p) for p in problem["loc"]) or "(top level)"
        raise ProfileError(f"{path.name}: field '{field}': {problem['msg']}") from error
    if profile.name != path.stem:
        raise ProfileError(f"{path.name}: field 'name': {profile.name!r} must match the file name")
    return profile
