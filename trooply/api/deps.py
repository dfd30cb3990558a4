"""Typed dependencies: every route signature says what it needs, and takes only that. Each alias reads one
service off the app's container; this module is the only place routes meet the container."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool

from trooply.admin.auth import AdminGate
from trooply.admin.service import TenantAdminService
from trooply.analytics.service import AnalyticsService
from trooply.api.body import gate_before_body
from trooply.api.cors import admit_browser_origin
from trooply.catalog.service import CatalogService
from trooply.colour_refresh.service import ColourRefreshService
from trooply.config import Settings
from trooply.container import Container
from trooply.detection.service import DetectionService
from trooply.duplicates.service import DuplicateService
from trooply.errors import NotFound
from trooply.feedback.service import FeedbackService
from trooply.feeds.service import FeedService
from trooply.model_migration.service import ModelMigrationService
from trooply.ranking.profiles import ScoringProfile
from trooply.ranking.rules import RuleService
from trooply.search.service import SearchService
from trooply.tasks.queue import Dispatcher
from trooply.tenancy.service import Principal, TenantService
from trooply.tenancy.usage import UsageService
from trooply.vision.query_fetch import QueryImageFetcher

# The dependencies below only read attributes: `async def` keeps them on the event loop, where a plain
# `def` would cost each one a thread-pool hop per request.


def _container(request: Request) -> Container:
    return request.app.state.container


async def get_settings(request: Request) -> Settings:
    return _container(request).settings


async def get_tenants(request: Request) -> TenantService:
    return _container(request).tenants


async def get_catalog(request: Request) -> CatalogService:
    return _container(request).catalog


async def get_search(request: Request) -> SearchService:
    return _container(request).search


async def get_query_fetcher(request: Request) -> QueryImageFetcher:
    return _container(request).query_fetcher


async def get_detection(request: Request) -> DetectionService:
    return _container(request).detection


async def get_usage(request: Request) -> UsageService:
    return _container(request).usage


async def get_feedback(request: Request) -> FeedbackService:
    return _container(request).feedback


async def get_duplicates(request: Request) -> DuplicateService:
    return _container(request).duplicates


async def get_feeds(request: Request) -> FeedService:
    return _container(request).feeds
async def get_analytics(request: Request) -> AnalyticsService:
    return _container(request).analytics


async def get_rules(request: Request) -> RuleService:
    return _container(request).rules


async def get_profiles(request: Request) -> dict[str, ScoringProfile]:
    return _container(request).profiles


async def get_admin(request: Request) -> TenantAdminService:
    return _container(request).admin


async def get_model_migration(request: Request) -> ModelMigrationService:
    return _container(request).model_migration


async def get_colour_refresh(request: Request) -> ColourRefreshService:
    return _container(request).colour_refresh


async def get_queue(request: Request) -> Dispatcher:
    return _container(request).dispatcher


@dataclass(frozen=True)
class ReadinessChecks:
    """What /readyz looks at: each check raises when its part is unavailable."""

    checks: dict[str, Callable[[], object]]
    models: Callable[[], dict[str, dict[str, Any]]]


async def get_readiness(request: Request) -> ReadinessChecks:
    container = _container(request)
    # Lambdas where the container opens a part on first use: the check is that it opens.
    return ReadinessChecks(checks={"sql": container.db.ping, "index": lambda: container.index.ping(),
                                   "queue": container.dispatcher.ping, "model": lambda: container.encoder},
                           models=container.runtime.describe)


SettingsDep = Annotated[Settings, Depends(get_settings)]
TenantsDep = Annotated[TenantService, Depends(get_tenants)]
CatalogDep = Annotated[CatalogService, Depends(get_catalog)]
SearchDep = Annotated[SearchService, Depends(get_search)]
QueryFetcherDep = Annotated[QueryImageFetcher, Depends(get_query_fetcher)]
DetectionDep = Annotated[DetectionService, Depends(get_detection)]
UsageDep = Annotated[UsageService, Depends(get_usage)]
FeedbackDep = Annotated[FeedbackService, Depends(get_feedback)]
DuplicatesDep = Annotated[DuplicateService, Depends(get_duplicates)]
FeedsDep = Annotated[FeedService, Depends(get_feeds)]
RulesDep = Annotated[RuleService, Depends(get_rules)]
AnalyticsDep = Annotated[AnalyticsService, Depends(get_analytics)]
ProfilesDep = Annotated[dict[str, ScoringProfile], Depends(get_profiles)]
QueueDep = Annotated[Dispatcher, Depends(get_queue)]
AdminDep = Annotated[TenantAdminService, Depends(get_admin)]
ModelMigrationDep = Annotated[ModelMigrationService, Depends(get_model_migration)]
ColourRefreshDep = Annotated[ColourRefreshService, Depends(get_colour_refresh)]
ReadinessDep = Annotated[ReadinessChecks, Depends(get_readiness)]

# A product id in a path: what POST accepts. Control characters (NUL above all, which PostgreSQL refuses)
# are a 422 here, never a query.
ProductIdPath = Annotated[str, Path(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]


def _bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else None


async def authenticated(request: Request, scope: str) -> Principal:
    """The caller's principal, holding `scope`. The key is checked and its tenant's rate limit applied once per
    request: StrictJsonRoute does it before reading a body, the route's dependency then finds it done."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        tenants = _container(request).tenants
        key = _bearer_key(request)
        # A cached key is answered here; a lookup that reads the database goes to a thread.
        principal = tenants.recently_authenticated(key)
        if principal is None:
            principal = await run_in_threadpool(tenants.authenticate, key)
        admit_browser_origin(request, principal)  # a key copied to another site costs its tenant no rate
        await request.app.state.rate_limiter.check_tenant(principal)
        request.state.principal = principal
    principal.require(scope)
    return principal


class ScopedKey:
    """A dependency that authenticates the key, applies its tenant's rate limit and requires one scope
    (catalog, search, ...); the OpenAPI document reads the scope to say which keys a route takes."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(self, request: Request) -> Principal:
        return await authenticated(request, self.scope)


def scoped(scope: str):
    return Depends(gate_before_body(ScopedKey(scope)))


CatalogPrincipal = Annotated[Principal, scoped("catalog")]
SearchPrincipal = Annotated[Principal, scoped("search")]
FeedbackPrincipal = Annotated[Principal, scoped("feedback")]


async def require_admin_token(request: Request) -> None:
    """The admin API's guard: TROOPLY_ADMIN_TOKEN, and no rate limit (the API is mounted only when it is set)."""
    settings = _container(request).settings
    if settings.admin_token is None:
        raise NotFound("the admin API is off: set TROOPLY_ADMIN_TOKEN", code="not_found")
    AdminGate(settings.admin_token).check(_bearer_key(request))


gate_before_body(require_admin_token)
