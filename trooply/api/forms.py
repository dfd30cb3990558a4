"""Reading a query's fields from JSON or multipart: routes that take an upload (search, detect, embed) accept
the same fields as form fields, JSON-valued ones (`filters`, `bbox`, ...) as JSON text."""

from typing import Any

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.exceptions import HTTPException

from trooply.api.body import FORM_TYPES
from trooply.errors import InvalidRequest, PayloadTooLarge, byte_size
from trooply.strict_json import parse_json

JSON_FORM_FIELDS = ("filters", "bbox", "image_urls", "classes", "bounding_boxes")
# A form's text fields are a query's: a few KiB (5 image URLs, 50 boxes, a filter of 100 values). Refused while
# the body streams in, before any is parsed; uploads have their own caps.
MAX_FORM_FIELD_BYTES = 16 * 1024
MAX_FORM_FIELDS = 50
# Plain text, or a JSON list of texts (embed takes either).
TEXT_OR_LIST_FIELDS = ("text",)
ONE_IMAGE = {"file": "the query image, instead of image_url"}


async def read_query(request: Request, schema: type[BaseModel], max_bytes: int,
                     file_fields: tuple[str, ...] = ("file", "files")) -> tuple[Any, list[bytes]]:
    """The request's fields validated by `schema`, and the uploaded files' bytes (multipart only)."""
    files: list[bytes] = []
    is_form = request.headers.get("content-type", "").startswith(FORM_TYPES)
    if is_form:
        form = await read_form(request)
        fields: dict[str, Any] = {}
        for name, value in form.multi_items():
            if isinstance(value, StarletteUpload):
                if name in file_fields:
                    files.append(await _read_capped(value, max_bytes, name))
            elif name in JSON_FORM_FIELDS or (name in TEXT_OR_LIST_FIELDS and value.lstrip().startswith("[")):
                fields[name] = _json_field(name, value)
            else:
                fields[name] = value
    else:
        try:
            fields = await request.json()  # already checked by StrictJsonRoute
        except ValueError as error:
            raise InvalidRequest("the body must be JSON or multipart/form-data", code="validation_error") from error
    try:
        # Form fields arrive as text ("10"), so only they are converted; a JSON body is validated strictly.
        return schema.model_validate(fields, strict=not is_form), files
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(p) for p in problem["loc"]) or "body"
        raise InvalidRequest(f"{field}: {problem['msg']}", code="validation_error",
                             details=[{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                                      for e in error.errors()]) from error


async def read_form(request: Request) -> FormData:
    """The multipart (or urlencoded) form, its text fields capped in size and number."""
    try:
        return await request.form(max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FORM_FIELD_BYTES)
    except HTTPException as error:  # Starlette's answer to a form it refused to parse
        if "maximum size" in str(error.detail):
            raise PayloadTooLarge(f"a form field exceeds {MAX_FORM_FIELD_BYTES} bytes; uploads go in file fields",
                                  code="form_field_too_large", details={"max_bytes": MAX_FORM_FIELD_BYTES}) from error
        raise InvalidRequest(f"the form cannot be read: {error.detail}", code="invalid_form", status=400) from error


def _json_field(name: str, value: str) -> Any:
    try:
        return parse_json(value)
    except InvalidRequest as error:
        if error.code != "invalid_json":  # too deep, a non-finite number, a lone surrogate: as in a JSON body
            raise
        # Unparseable JSON in one field is a bad field value, not a bad body.
        code = "invalid_filter" if name == "filters" else "validation_error"
        raise InvalidRequest(f"{name}: not valid JSON", code=code) from error


async def _read_capped(upload: StarletteUpload, max_bytes: int, name: str) -> bytes:
    # Read one byte past the cap so an oversized upload is refused without holding all of it.
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"`{name}` exceeds {byte_size(max_bytes)}", code="upload_too_large")
    if not data:
        raise InvalidRequest(f"`{name}` is empty", code="empty_upload")
    return data
