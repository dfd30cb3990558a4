from pydantic import BaseModel, Field


class TenantColourRefreshOut(BaseModel):
    tenant_id: str
    status: str = Field(description="pending, running or done")
    done: int = Field(description="products whose stored colour is current")
    failed: int = Field(description="products whose image could not be fetched again: their colour stays neutral")
    total: int


class ColourRefreshOut(BaseModel):
    version: int = Field(description="the colour signal's version payloads are brought to")
    started: list[str] = Field(description="tenants this call began (or restarted)")
    done: int
    failed: int
    total: int
    tenants: list[TenantColourRefreshOut]
