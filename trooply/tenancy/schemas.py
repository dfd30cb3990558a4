"""What the account endpoints answer: the tenant, its plan and keys."""

from datetime import datetime

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


class AccountPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    default_currency: str | None = Field(pattern=r"^[A-Za-z]{3}$", description=(
        "ISO 4217 (EUR, USD, …): how the portal shows a price sent without a currency; null forgets it"))


class RotatedKeys(BaseModel):
    tenant_id: str
    secret_key: str
    publishable_key: str
