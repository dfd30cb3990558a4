"""One place maps domain errors and request validation to the JSON error envelope."""

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from trooply.errors import TrooplyError

log = logging.getLogger(__name__)


class ErrorResponse(JSONResponse):
    """Escapes non-ASCII: an error may quote what the client sent, and rendering must never fail on it."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def error_response(status: int, code: str, message: str, details=None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return ErrorResponse({"error": body}, status_code=status, headers=headers)


def _retry_headers(error: TrooplyError) -> dict[str, str] | None:
    retry_after = error.details.get("retry_after") if isinstance(error.details, dict) else None
    return {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TrooplyError)
    async def domain_error(_request: Request, error: TrooplyError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.details, _retry_headers(error))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        details = [{"field": ".".join(str(p) for p in problem["loc"] if p != "body") or "body",
                    "message": problem["msg"]} for problem in error.errors()]
        first = details[0] if details else {"field": "body", "message": "invalid request"}
        return error_response(422, "validation_error", f"{first['field']}: {first['message']}", details)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return error_response(error.status_code, code, str(error.detail), headers=error.headers)


class UnexpectedErrorMiddleware:
    """The last line: a bug answers 500 in the envelope and the connection stays usable. (Starlette's own
    server-error handler re-raises after answering, and the server then drops the keep-alive connection.)"""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(500, "internal_error", "an unexpected error occurred; it has been logged")
            await response(scope, receive, send)
