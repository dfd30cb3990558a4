from pydantic import BaseModel, Field


class ColourRefreshFailureOut(BaseModel):
    product_id: str
    code: str = Field(description="why its image failed, as ingest would say (image_fetch_failed, ...)")
    message: str
    attempts: int = Field(description="runs that tried it; a restart tries it again")


class TenantColourRefreshOut(BaseModel):
    tenant_id: str
    status: str = Field(description="pending, running or done")
    done: int = Field(description="products whose stored colour is current")
    failed: int = Field(description="products whose image could not be fetched again: their colour stays neutral")
    total: int
    failures: list[ColourRefreshFailureOut] = Field(
        default_factory=list, description="the failed products still neutral, in id order (the first 100)")


class ColourRefreshOut(BaseModel):
    version: int = Field(description="the colour signal's version payloads are brought to")
    started: list[str] = Field(description="tenants this call began (or restarted)")
    done: int
    failed: int
    total: int
    tenants: list[TenantColourRefreshOut]
