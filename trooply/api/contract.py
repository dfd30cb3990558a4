"""The OpenAPI document as a contract a client generator can trust: which key each operation takes, the error
envelope on every status it answers, typed request bodies, and operation ids that read as method names.

FastAPI's document is completed here after it is built, so routers keep declaring only what they answer on
success."""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from trooply.api.deps import ScopedKey, require_admin_token
from trooply.catalog.schemas import ProductBatchIn, ProductIn
from trooply.tenancy.service import PUBLISHABLE, SCOPES, SECRET

SCHEMAS = "#/components/schemas/"
# The security schemes: both tenant keys are bearer tokens; which one an operation takes is its requirement.
KEY_SCHEMES = {SECRET: "secretKey", PUBLISHABLE: "publishableKey"}
ADMIN_SCHEME = "adminToken"
SECURITY_SCHEMES = {
    "secretKey": {"type": "http", "scheme": "bearer", "bearerFormat": "sk_…",
                  "description": "the tenant's secret key: every scope (catalogue, search, feedback); keep it "
                  "server side"},
    "publishableKey": {"type": "http", "scheme": "bearer", "bearerFormat": "pk_…",
                       "description": "the tenant's publishable key: search and feedback only; safe in a browser"},
    ADMIN_SCHEME: {"type": "http", "scheme": "bearer",
                   "description": "TROOPLY_ADMIN_TOKEN: the operators' admin API"},
}
STATUS_TEXT = {
    400: "Bad request", 401: "The key is missing, unknown or revoked", 403: "The key may not do this, or the plan "
    "refuses it (error.code says which)", 404: "Not found", 409: "Not in a state to do this yet",
    413: "The body or an upload is too large", 422: "The request is invalid (error.code and error.details say how)",
    429: "Rate limited: wait Retry-After seconds", 503: "Overloaded or a part is unavailable: retry after Retry-After",
}
# Operations that answer 409 besides the rules below: a product not indexed yet, an index of another model.
CONFLICT_PATHS = re.compile(r"^/v1/search/(?!feedback$)|^/v1/embed$|^/admin/v1/models")


class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable, stable: e.g. validation_error, product_not_found")
    message: str = Field(description="for a person: what went wrong and, where it helps, what to do")
    details: Any = Field(None, description="more about it, by code: the fields at fault, the index of an item, …")


class ErrorEnvelope(BaseModel):
    """Every error the API answers, whatever its status."""

    error: ErrorBody


@dataclass(frozen=True)
class Operation:
    """A route as the document shows it: its path (with the prefixes of the routers that include it)."""

    path: str
    methods: frozenset[str]
    route: APIRoute


def install_contract(app: FastAPI) -> None:
    """Completes the app's document the first time it is built (it is cached afterwards)."""
    build = app.openapi
    completed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not completed:
            completed.append(complete(build(), _routes(app)))
        return completed[0]

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the document


def complete(document: dict[str, Any], routes: list[Operation]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 shape, which this API never sends
        schemas.pop(name, None)
    _add_models(schemas, ErrorEnvelope, ProductIn, ProductBatchIn)
    document["components"]["securitySchemes"] = SECURITY_SCHEMES
    for found in routes:
        for method in found.methods:
            operation = document["paths"].get(found.path, {}).get(method.lower())
            if operation is None:
                continue
            operation["operationId"] = operation_id(found)
            security = _security(found.route)
            if security:
                operation["security"] = security
            _declare_errors(operation, found, bool(security))
            _hoist_inline_bodies(operation, schemas)
            _name_inline_answers(operation, schemas)
    _type_product_submission(document)
    return document


def operation_id(found: Operation) -> str:
    """The handler's name (`search_text`, `submit_products`); the admin API's with `admin_` before it."""
    return f"admin_{found.route.name}" if found.path.startswith("/admin/") else found.route.name


def _routes(app: FastAPI) -> list[Operation]:
    # FastAPI 0.16x keeps an included router whole and resolves its routes through contexts.
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    found = []
    context: Any
    for context in contexts(app.routes) if contexts else app.routes:
        route = getattr(context, "original_route", context)
        if isinstance(route, APIRoute) and route.include_in_schema:
            found.append(Operation(context.path_format, frozenset(context.methods or ()), route))
    return found


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _security(route: APIRoute) -> list[dict[str, list[str]]]:
    """Either key that holds the route's scope (the secret key holds them all), or the admin token."""
    for call in _calls(route.dependant):
        if isinstance(call, ScopedKey):
            return [{KEY_SCHEMES[kind]: []} for kind in (PUBLISHABLE, SECRET) if call.scope in SCOPES[kind]]
        if call is require_admin_token:
            return [{ADMIN_SCHEME: []}]
    return []


def _statuses(operation: dict[str, Any], found: Operation, authenticated: bool) -> set[int]:
    statuses = {503}
    route = found.route
    has_input = bool(route.dependant.path_params or route.dependant.query_params or "requestBody" in operation)
    if authenticated:
        statuses |= {401, 403, 429} if not found.path.startswith("/admin/") else {401, 403}
    if has_input:
        statuses.add(422)
    if "requestBody" in operation:
        statuses.add(413)
    if route.dependant.path_params or authenticated:  # an unknown id, or a tenant deleted a moment ago
        statuses.add(404)
    if CONFLICT_PATHS.search(found.path):
        statuses.add(409)
    return statuses


def _declare_errors(operation: dict[str, Any], found: Operation, authenticated: bool) -> None:
    responses = operation.setdefault("responses", {})
    envelope = {"application/json": {"schema": {"$ref": f"{SCHEMAS}ErrorEnvelope"}}}
    for status in sorted(_statuses(operation, found, authenticated)):
        responses[str(status)] = {"description": STATUS_TEXT[status], "content": envelope}


def _hoist_inline_bodies(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A body a route reads itself is declared inline with its own `$defs`: each becomes a component, and a
    titled JSON body a reference to one, so that a generator names the models."""
    for media, content in operation.get("requestBody", {}).get("content", {}).items():
        schema = content.get("schema", {})
        for name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(name, _local_refs(definition))
        content["schema"] = schema = _local_refs(schema)
        if media == "application/json" and "title" in schema and "$ref" not in schema:
            schemas.setdefault(schema["title"], schema)
            content["schema"] = {"$ref": f"{SCHEMAS}{schema['title']}"}


def _name_inline_answers(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """An answer without a model is titled from FastAPI's default id ("Response Detect V1 Detect Post"), which a
    generator turns into a class name: it becomes a component named after the operation (DetectResponse)."""
    name = "".join(part.title() for part in operation["operationId"].split("_")) + "Response"
    for status, response in operation.get("responses", {}).items():
        content = response.get("content", {}).get("application/json", {})
        schema = content.get("schema", {})
        if status.startswith("2") and str(schema.get("title", "")).startswith("Response "):
            schemas[name] = {**schema, "title": name}
            content["schema"] = {"$ref": f"{SCHEMAS}{name}"}


def _local_refs(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {key: (value.replace("#/$defs/", SCHEMAS) if key == "$ref" and isinstance(value, str)
                      else _local_refs(value)) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_local_refs(item) for item in schema]
    return schema


def _type_product_submission(document: dict[str, Any]) -> None:
    """POST /v1/products reads its body product by product (each invalid one is answered, not the request):
    declared here as what it accepts, one product or a batch."""
    operation = document["paths"].get("/v1/products", {}).get("post")
    if operation is None:
        return
    operation["requestBody"]["content"]["application/json"]["schema"] = {
        "oneOf": [{"$ref": f"{SCHEMAS}ProductIn"}, {"$ref": f"{SCHEMAS}ProductBatchIn"}],
        "description": "a product, or {\"products\": [...]} (1 to 1,000)"}


def _add_models(schemas: dict[str, Any], *models: type[BaseModel]) -> None:
    for model in models:
        schema = model.model_json_schema(ref_template=SCHEMAS + "{model}")
        for name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas[model.__name__] = schema
