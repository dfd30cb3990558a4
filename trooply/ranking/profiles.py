"""Scoring profiles: data files under profiles/, validated at start-up, one per product family."""

from pathlib import Path

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SIGNALS = ("clip", "colour", "aspect", "category", "popularity", "rules")
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
    weights: SignalWeights
    gates: Gates
    prompts: list[str] = Field(min_length=1)
    # Words a shopper types for this family beyond the category names ("sneaker", "tote"): the query reader's.
    query_words: list[str] = Field(default_factory=list)
    categories: list[str] = Field(min_length=1)

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
