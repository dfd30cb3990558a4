"""Search routes. Image modes take JSON (`image_url`) or multipart (`file`/`files` plus the same fields
as form fields, JSON-valued ones such as `filters` and `bbox` as JSON strings)."""

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile as StarletteUpload

from trooply.api.body import FORM_TYPES, StrictJsonRoute, body_openapi
from trooply.api.deps import ContainerDep, SearchPrincipal
from trooply.container import Container
from trooply.errors import InvalidRequest, PayloadTooLarge, TrooplyError
from trooply.search.schemas import (
    MAX_MULTI_IMAGES,
    MIN_MULTI_IMAGES,
    CropSearchRequest,
    DetectingImageQuery,
    FusionSearchRequest,
    ImageQuery,
    MultiSearchRequest,
    SearchEnvelope,
    SimilarSearchRequest,
    TextSearchRequest,
    UrlSearchRequest,
    VoiceSearchRequest,
)
from trooply.strict_json import parse_json
from trooply.vision.query_image import QueryImage

router = APIRouter(prefix="/v1/search", tags=["search"], route_class=StrictJsonRoute)
JSON_FORM_FIELDS = ("filters", "bbox", "image_urls", "classes", "bounding_boxes")
# Plain text, or a JSON list of texts (embed takes either).
TEXT_OR_LIST_FIELDS = ("text",)
# Envelope keys that only some modes or options fill: left out rather than sent as null.
OPTIONAL_KEYS = ("transcript", "detection", "interpreted", "group_by")
ONE_IMAGE = {"file": "the query image, instead of image_url"}


def envelope_response(envelope: SearchEnvelope) -> Response:
    # Serialised once by pydantic, not validated again by FastAPI: this is the hot path.
    exclude: dict[str, Any] = {key: True for key in OPTIONAL_KEYS if getattr(envelope, key) is None}
    if envelope.group_by is None:
        exclude["results"] = {"__all__": {"group"}}
    return Response(envelope.model_dump_json(by_alias=True, exclude=exclude), media_type="application/json")


@router.post("/text", response_model=SearchEnvelope)
def search_text(request: TextSearchRequest, principal: SearchPrincipal, container: ContainerDep):
    return envelope_response(container.search.search_text(principal.tenant_id, request.query, request,
                                                          request.interpret))


@router.post("/similar", response_model=SearchEnvelope)
def search_similar(request: SimilarSearchRequest, principal: SearchPrincipal, container: ContainerDep):
    """More like a catalogue product (its stored vector: no fetch, no encode); the product itself is left out."""
    return envelope_response(container.search.search_similar(principal.tenant_id, request.product_id, request))


@router.post("/url", response_model=SearchEnvelope)
async def search_url(request: UrlSearchRequest, principal: SearchPrincipal, container: ContainerDep):
    image = await fetched(container, principal.tenant_id, QueryImage(url=request.image_url))
    return await _run(container.search.search_image, principal.tenant_id, image, request, request.detect,
                      request.detect_class)


@router.post("/image", response_model=SearchEnvelope, openapi_extra=body_openapi(
    DetectingImageQuery, {"file": "the query image"}, json_body=False))
async def search_image(request: Request, principal: SearchPrincipal, container: ContainerDep):
    options, files = await read_query(request, DetectingImageQuery, container.settings.max_upload_bytes)
    if not files:
        raise InvalidRequest("upload the query image as the multipart field `file`", code="image_required")
    return await _run(container.search.search_image, principal.tenant_id, QueryImage(data=files[0]), options,
                      options.detect, options.detect_class)


@router.post("/crop", response_model=SearchEnvelope, openapi_extra=body_openapi(CropSearchRequest, ONE_IMAGE))
async def search_crop(request: Request, principal: SearchPrincipal, container: ContainerDep):
    options, files = await read_query(request, CropSearchRequest, container.settings.max_upload_bytes)
    image = await fetched(container, principal.tenant_id, one_image(options, files))
    return await _run(container.search.search_crop, principal.tenant_id, image, options.bbox, options)


@router.post("/multi", response_model=SearchEnvelope, openapi_extra=body_openapi(
    MultiSearchRequest, {"files": "2 to 5 query images (with image_urls, 2 to 5 in all)"}))
async def search_multi(request: Request, principal: SearchPrincipal, container: ContainerDep):
    options, files = await read_query(request, MultiSearchRequest, container.settings.max_upload_bytes)
    images = [QueryImage(url=url) for url in options.image_urls or ()] + [QueryImage(data=d) for d in files]
    if MIN_MULTI_IMAGES <= len(images) <= MAX_MULTI_IMAGES:  # else the service says how many it takes
        images = await fetched_all(container, principal.tenant_id, images)
    return await _run(container.search.search_multi, principal.tenant_id, images, options)


@router.post("/fusion", response_model=SearchEnvelope, openapi_extra=body_openapi(FusionSearchRequest, ONE_IMAGE))
async def search_fusion(request: Request, principal: SearchPrincipal, container: ContainerDep):
    options, files = await read_query(request, FusionSearchRequest, container.settings.max_upload_bytes)
    image = await fetched(container, principal.tenant_id, one_image(options, files))
    return await _run(container.search.search_fusion, principal.tenant_id, image, options.text,
                      options.image_weight, options, options.interpret)


@router.post("/voice", response_model=SearchEnvelope, openapi_extra=body_openapi(
    VoiceSearchRequest, {"audio": "the spoken query: WAV, MP3, WebM/Opus or OGG"}, json_body=False))
async def search_voice(request: Request, principal: SearchPrincipal, container: ContainerDep):
    options, files = await read_query(request, VoiceSearchRequest, container.settings.max_audio_bytes,
                                      file_fields=("audio",))
    if len(files) != 1:
        raise InvalidRequest("upload one recording as the multipart field `audio`", code="audio_required")
    return await _run(container.search.search_voice, principal.tenant_id, files[0], options, options.interpret)


async def _run(search, *args) -> Response:
    # Decoding, CLIP and Whisper are CPU-bound: never on the event loop.
    return envelope_response(await run_in_threadpool(search, *args))


async def fetched(container: Container, tenant_id: str, image: QueryImage) -> QueryImage:
    """The image with its bytes: a URL is fetched on the fetch pool, so a slow host holds no request thread."""
    if image.data is not None or image.url is None:
        return image
    return QueryImage(url=image.url, data=await container.query_fetcher.fetch(tenant_id, image.url))


async def fetched_all(container: Container, tenant_id: str, images: list[QueryImage]) -> list[QueryImage]:
    async def one(position: int, image: QueryImage) -> QueryImage:
        try:
            return await fetched(container, tenant_id, image)
        except TrooplyError as error:
            raise error.for_item(f"image {position}", position) from error

    return list(await asyncio.gather(*(one(position, image) for position, image in enumerate(images))))


def one_image(options: ImageQuery, files: list[bytes]) -> QueryImage:
    if len(files) > 1 or (files and options.image_url):
        raise InvalidRequest("send exactly one image: `image_url` or one uploaded `file`", code="image_required")
    return QueryImage(url=options.image_url, data=files[0] if files else None)


async def read_query(request: Request, schema: type[BaseModel], max_bytes: int,
                     file_fields: tuple[str, ...] = ("file", "files")) -> tuple[Any, list[bytes]]:
    """The request's fields validated by `schema`, and the uploaded files' bytes (multipart only)."""
    files: list[bytes] = []
    is_form = request.headers.get("content-type", "").startswith(FORM_TYPES)
    if is_form:
        form = await request.form()
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
        raise PayloadTooLarge(f"`{name}` exceeds {max_bytes} bytes", code="upload_too_large")
    if not data:
        raise InvalidRequest(f"`{name}` is empty", code="empty_upload")
    return data
