"""What the account endpoints answer: the tenant, its plan and keys."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class KeyOut(BaseModel):
    kind: str = Field(description="secret or publishable")
    prefix: str = Field(description="the key's first characters; the key itself is stored only as a hash")
    created_at: datetime


class AccountOut(BaseModel):
    tenant_id: str
    name: str
    plan: str
    created_at: datetime
    default_currency: str | None = Field(None, description="ISO 4217: the currency of prices sent without one")
    keys: list[KeyOut]
    allowed_origins: list[str] = Field(default_factory=list, description="browser origins the publishable key is "
                                       "accepted from; empty: no browser access")


class AllowedOrigins(BaseModel):
    """Exact origins (`https://shop.example`, `http://localhost:3000`): no wildcards, no paths."""

    model_config = ConfigDict(extra="forbid")

    allowed_origins: list[Annotated[str, Field(max_length=255)]] = Field(max_length=200)


class AccountPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    default_currency: str | None = Field(pattern=r"^[A-Za-z]{3}$", description=(
        "ISO 4217 (EUR, USD, …): how the portal shows a price sent without a currency; null forgets it"))


class RotatedKeys(BaseModel):
    tenant_id: str
    secret_key: str
    publishable_key: str
