"""The application factory: `create_app(settings)` builds an isolated app (tests build many)."""

import logging
import re
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from trooply.api.errors import install_error_handlers
from trooply.api.routers import health, products, search
from trooply.config import Settings
from trooply.container import Container

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    container = Container(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        container.start()
        try:
            yield
        finally:
            container.stop()

    app = FastAPI(title="Trooply", version="0.1.0", lifespan=lifespan,
                  description="Self-hosted visual search for ecommerce")
    app.state.container = container
    install_error_handlers(app)

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        rid = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.state.request_id = rid
        response = await call_next(request)
        response.headers[REQUEST_ID_HEADER] = rid
        return response

    app.include_router(health.router)
    app.include_router(products.router)
    app.include_router(search.router)
    return app
