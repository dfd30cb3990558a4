from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(min_length=1, max_length=500, description="as TROOPLY_CLIP_MODEL: a registry name, "
                       "hf-hub:org/repo or local-dir:/path")
    pretrained: str = Field("openai", max_length=500, description="as TROOPLY_CLIP_PRETRAINED; ignored for hf-hub: "
                            "and local-dir: models")


class ModelOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model: str
    pretrained: str
    space: str
    dim: int


class MigrationOut(ModelOut):
    done: int = Field(description="products the new model has a vector for")
    total: int = Field(description="indexed products to re-encode")
    failed: int = Field(description="products whose image failed; each run of the tenant's task tries them again")
    tenants_done: int
    tenants_total: int
    ready: bool = Field(description="every tenant is done: the cutover may happen")
    cutover: Literal["auto", "manual"]


class ModelsOut(BaseModel):
    active: ModelOut
    migrating: MigrationOut | None = None
    previous: ModelOut | None = Field(None, description="replaced by the last cutover and kept until cleanup: "
                                      "POST /admin/v1/models/rollback switches back to it")
