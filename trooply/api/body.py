"""JSON request bodies, parsed strictly (trooply.strict_json) once for every route before any handler sees
them, and the OpenAPI description of the bodies routes read themselves.

What a body may cost is decided before it is read: the caller is authenticated (and rate-limited) first, the
Content-Type must be one the route takes, and each route caps its body at what its fields can use (a search
is small; a batch of products is not). A large body is parsed on a worker thread, never on the event loop.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from trooply.errors import InvalidRequest, PayloadTooLarge
from trooply.strict_json import parse_json

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# What any query, rule, scan or admin call can use: its text fields, filters and ids take a few KiB.
SMALL_JSON_BODY_BYTES = 64 * 1024
# Parsing this much or more is done on a worker thread: below it, the thread hop costs more than the parse.
THREAD_PARSE_BYTES = 16 * 1024

Gate = Callable[[Request], Awaitable[Any]]
_GATES: set[Callable[..., Any]] = set()


def gate_before_body(dependency: Gate) -> Gate:
    """Marks an auth dependency that StrictJsonRoute also runs before it reads a body (it must be idempotent)."""
    _GATES.add(dependency)
    return dependency


class StrictJsonRoute(APIRoute):
    """Authenticates, checks the Content-Type and reads the body up to the route's cap, then parses a JSON body
    with `parse_json` before FastAPI or a handler reads it: both then get the checked value from Starlette's
    per-request cache, so the body is parsed once."""

    # The route's JSON body cap; None: only the app's (TROOPLY_MAX_JSON_BODY_BYTES, BodyLimitMiddleware).
    max_json_bytes: int | None = SMALL_JSON_BODY_BYTES

    @classmethod
    def with_json_cap(cls, max_json_bytes: int | None) -> type["StrictJsonRoute"]:
        """The route class for a router whose JSON bodies may be larger than a query's."""
        return type(cls.__name__, (cls,), {"max_json_bytes": max_json_bytes})

    def get_route_handler(self):
        handler = super().get_route_handler()
        takes = _body_types(self)
        gate = _gate(self.dependant)
        cap = self.max_json_bytes

        async def strict_handler(request: Request) -> Response:
            if takes and request.method in BODY_METHODS:
                if gate is not None:
                    await gate(request)  # no key, no byte of the body read
                media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if not (media_type in FORM_TYPES and "form" in takes):
                    raw = await _read_capped(request, cap)
                    if raw and not (_is_json(media_type) and "json" in takes):
                        raise _unsupported(media_type, takes)
                    if raw:
                        parsed = parse_json(raw) if len(raw) < THREAD_PARSE_BYTES else \
                            await run_in_threadpool(parse_json, raw)
                        request._json = parsed  # Starlette's cache of request.json()
            return await handler(request)

        return strict_handler


def _body_types(route: APIRoute) -> frozenset[str]:
    """What bodies a route reads: JSON when it declares a body parameter; what its own OpenAPI body names when
    it reads the request itself (search, detect, imports); nothing otherwise."""
    if route.body_field is not None:
        return frozenset({"json"})
    content = ((route.openapi_extra or {}).get("requestBody") or {}).get("content") or {}
    return frozenset({"json"} if "application/json" in content else set()) | \
        frozenset({"form"} if "multipart/form-data" in content else set())


def _gate(dependant: Dependant) -> Gate | None:
    for dependency in dependant.dependencies:
        if dependency.call in _GATES:
            return dependency.call
        if (found := _gate(dependency)) is not None:
            return found
    return None


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/")
                                                 and media_type.endswith("+json"))


async def _read_capped(request: Request, cap: int | None) -> bytes:
    declared = request.headers.get("content-length", "")
    if cap is not None and declared.isdigit() and int(declared) > cap:
        raise _too_large(cap)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if cap is not None and size > cap:
            raise _too_large(cap)
        chunks.append(chunk)
    request._body = body = b"".join(chunks)  # Starlette's cache of request.body()
    return body


def _too_large(cap: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body exceeds {cap} bytes, the most this route uses",
                           details={"max_bytes": cap})


def _unsupported(media_type: str, takes: frozenset[str]) -> InvalidRequest:
    wanted = " or ".join(t for kind, t in (("json", "application/json"), ("form", "multipart/form-data"))
                         if kind in takes)
    got = f"`{media_type}`" if media_type else "none"
    return InvalidRequest(f"the Content-Type header must be {wanted} (got {got})", code="unsupported_content_type",
                          status=415, details={"header": "Content-Type", "expected": wanted.split(" or ")})


def body_openapi(model: type[BaseModel], files: dict[str, str], *, json_body: bool = True) -> dict[str, Any]:
    """`openapi_extra` for the routes that read their own body: the JSON form (`model`) and the multipart
    form (the same fields, JSON-valued ones as JSON text, plus the named file parts), so that generated
    clients and fuzzers can call them."""
    schema = model.model_json_schema()
    form_fields = {name: (_as_json_text(spec) if _is_structured(spec) else spec)
                   for name, spec in schema["properties"].items()}
    for name, description in files.items():
        part = {"type": "string", "format": "binary", "description": description}
        form_fields[name] = {"type": "array", "items": part} if name == "files" else part
    content: dict[str, Any] = {"multipart/form-data": {"schema": {"type": "object", "properties": form_fields}}}
    if json_body:
        content["application/json"] = {"schema": schema}
    return {"requestBody": {"required": True, "content": content}}


def _is_structured(spec: dict[str, Any]) -> bool:
    kinds = [spec.get("type")] + [option.get("type") for option in spec.get("anyOf", [])]
    return any(kind in ("object", "array") for kind in kinds)


def _as_json_text(spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "string", "description": f"JSON text: {spec.get('description') or spec.get('title', '')}"}
