"""What the admin API reads and answers."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trooply.config import PlanLimits
from trooply.index.words import Language
from trooply.tenancy.schemas import KeyOut

TenantName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S", description="not unique")]
PlanName = Annotated[str, Field(min_length=1, max_length=20, description="a plan of TROOPLY_PLANS")]


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TenantName
    plan: PlanName = "free"


class TenantPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TenantName | None = None
    plan: PlanName | None = Field(None, description="takes effect at once, quotas included")
    allowed_origins: list[Annotated[str, Field(max_length=255)]] | None = Field(
        None, max_length=200, description="replaces the browser origins the publishable key is accepted from "
        "(exact origins such as https://shop.example; [] = no browser access)")
    language: Language | None = Field(None, description="the language of the shop's product text: its words are "
                                      "tokenised (stop words, stemming) in it, its indexed words re-tokenised in the "
                                      "background")

    @model_validator(mode="after")
    def _changes_something(self) -> "TenantPatch":
        if self.name is None and self.plan is None and self.allowed_origins is None and self.language is None:
            raise ValueError("send name, plan, allowed_origins, language or several")
        return self


class TenantCreated(BaseModel):
    """The keys are shown this once: only their hashes are stored."""

    tenant_id: str
    name: str
    plan: str
    secret_key: str
    publishable_key: str


class TenantSummary(BaseModel):
    tenant_id: str
    name: str
    plan: str
    created_at: datetime
    products: int = Field(description="products in the catalogue, any status")
    storage_tier: Literal["shared", "dedicated"] | None = Field(
        description="shared: in the store small tenants share; dedicated: a store of its own; null: not known here")
    promoting: bool = Field(False, description="a move from the shared store to a store of its own is running")


class TenantOut(TenantSummary):
    limits: PlanLimits
    keys: list[KeyOut]
    allowed_origins: list[str] = Field(default_factory=list, description="browser origins of the publishable key")
    language: str = Field("english", description="the language its products' words are tokenised in")
    words_language: str = Field("english", description="the language its indexed words are in: differs from "
                                "`language` while they are re-tokenised")


class TenantPage(BaseModel):
    tenants: list[TenantSummary]
    next_after: str | None = Field(description="pass as `after` for the next page; null on the last")


class TenantDeletion(BaseModel):
    tenant_id: str
    status: Literal["deleting"] = Field(description="keys are revoked; the data is purged in the background")
