"""JSON request bodies, parsed strictly (trooply.strict_json) once for every route before any handler sees
them, and the OpenAPI description of the bodies routes read themselves."""

from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from trooply.strict_json import parse_json

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class StrictJsonRoute(APIRoute):
    """Parses a JSON body with `parse_json` before FastAPI or a handler reads it: both then get the
    checked value from Starlette's per-request cache, so the body is parsed once."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            if request.method in BODY_METHODS and not request.headers.get("content-type", "").startswith(FORM_TYPES):
                raw = await request.body()
                if raw:
                    request._json = parse_json(raw)  # Starlette's cache of request.json()
            return await handler(request)

        return strict_handler


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
