"""What the account endpoints answer: the tenant, its plan and keys."""

from datetime import datetime

from pydantic import BaseModel, Field


class KeyOut(BaseModel):
    kind: str = Field(description="secret or publishable")
    prefix: str = Field(description="the key's first characters; the key itself is stored only as a hash")
    created_at: datetime


class AccountOut(BaseModel):
    tenant_id: str
    name: str
    plan: str
    created_at: datetime
    keys: list[KeyOut]


class RotatedKeys(BaseModel):
    tenant_id: str
    secret_key: str
    publishable_key: str
