"""Ranking at the edge: merchandising rules (what a merchant sends, what the API answers) and the scoring profiles."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(None, max_length=200)
    filters: dict[str, Any] = Field(min_length=1)
    weight: float = Field(ge=-1.0, le=1.0, description="+1 strongest boost, -1 strongest bury")
    profile: str | None = None

    @field_validator("weight")
    @classmethod
    def _not_zero(cls, value: float) -> float:
        if value == 0:
            raise ValueError("a rule with weight 0 does nothing")
        return value


class RuleOut(BaseModel):
    model_config = {"from_attributes": True}

    id: str
    name: str | None
    filters: dict[str, Any]
    weight: float
    profile: str | None
    created_at: datetime


class ProfileOut(BaseModel):
    name: str
    weights: dict[str, float]
    candidate_pool: int
    categories: list[str]


class ProfileList(BaseModel):
    profiles: list[ProfileOut]
