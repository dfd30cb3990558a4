"""The application factory: `create_app(settings)` builds an isolated app (tests build many)."""

import logging
import re
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.formparsers import MultiPartParser

from trooply.api.contract import install_contract
from trooply.api.cors import install_cors
from trooply.api.edges import RequestEdgesMiddleware
from trooply.api.errors import UnexpectedErrorMiddleware, install_error_handlers
from trooply.api.limits import install_limits
from trooply.api.pages import install_pages
from trooply.api.routers import (
    account,
    admin,
    admin_colour,
    admin_docs,
    admin_models,
    analytics,
    catalog,
    detect,
    duplicates,
    events,
    feedback,
    feeds,
    health,
    products,
    profiles,
    rules,
    search,
    usage,
    widget,
)
from trooply.config import Settings
from trooply.container import Container
from trooply.observability import REQUEST_SECONDS, request_id_var
from trooply.portal import portal_app

REQUEST_ID_HEADER = b"x-request-id"  # ASGI header names are lower-case bytes
access_log = logging.getLogger("trooply.access")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Tags every response and log line with a request id (the caller's, if sane), times the request per
    route, and writes one access log line. Plain ASGI: no per-request task."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started, status = time.perf_counter(), 500
        outer_root = scope.get("root_path", "")

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_label(scope, outer_root)
            REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(elapsed)
            access_log.info("%s %s %s", scope["method"], route, status,
                            extra={"request_id": request_id, "method": scope["method"], "path": route, "status": status,
                                   "duration_ms": round(elapsed * 1000, 2)})
            request_id_var.reset(token)


def _route_label(scope, outer_root: str) -> str:
    """The route's template (ids never become labels); a mounted app's files (the portal, /docs' assets) as its
    prefix and `/*`, since a mount lengthens the root path as it routes."""
    route = getattr(scope.get("route"), "path", None)
    if route is not None:
        return route
    mounted = scope.get("root_path", "")
    return f"{mounted}/*" if len(mounted) > len(outer_root) else "unmatched"


def _keep_uploads_in_memory(settings: Settings) -> None:
    # Privacy: Starlette spools multipart files over 1 MiB to a temporary file; query images and
    # audio must never touch the disk, so spool only beyond what our caps accept anyway.
    cap = max(settings.images.max_upload_bytes, settings.voice.max_audio_bytes) + 1
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, cap)


def create_app(settings: Settings | None = None) -> FastAPI:
    container = Container(settings or Settings())
    _keep_uploads_in_memory(container.settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        container.start()
        try:
            yield
        finally:
            container.stop()

    app = FastAPI(title="Trooply", version="0.1.0", lifespan=lifespan, docs_url=None,
                  description="Self-hosted visual search for ecommerce")
    app.state.container = container
    install_error_handlers(app)
    install_contract(app)

    install_limits(app, container.settings)  # inside the middleware below: refusals get an id and a log line
    app.add_middleware(RequestEdgesMiddleware)
    app.add_middleware(UnexpectedErrorMiddleware)
    install_cors(app, container.tenants, container.settings.limits.key_cache_seconds)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)
    app.include_router(products.router)
    app.include_router(search.router)
    app.include_router(feedback.router)
    app.include_router(events.router)
    app.include_router(analytics.router)
    app.include_router(rules.router)
    app.include_router(duplicates.router)
    app.include_router(feeds.router)
    app.include_router(detect.router)
    app.include_router(usage.router)
    app.include_router(catalog.router)
    app.include_router(account.router)
    app.include_router(profiles.router)
    if container.settings.admin_token is not None:  # else every /admin path is 404
        # Out of the public document: the admin API is described at /admin/v1/openapi.json, behind the token.
        app.include_router(admin.router, include_in_schema=False)
        app.include_router(admin_models.router, include_in_schema=False)
        app.include_router(admin_colour.router, include_in_schema=False)
        app.include_router(admin_docs.router)
    install_pages(app)  # `/` and /docs
    app.mount("/portal", portal_app(), name="portal")
    app.include_router(widget.router)
    return app
