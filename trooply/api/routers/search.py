"""Search routes. Image modes take JSON (`image_url`) or multipart (`file`/`files` plus the same fields
as form fields, JSON-valued ones such as `filters` and `bbox` as JSON strings)."""

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from trooply.api.body import StrictJsonRoute, body_openapi
from trooply.api.deps import QueryFetcherDep, SearchDep, SearchPrincipal, SettingsDep
from trooply.api.forms import ONE_IMAGE, read_query
from trooply.api.query_images import fetched, fetched_all, one_image
from trooply.errors import InvalidRequest
from trooply.search.schemas import (
    MAX_MULTI_IMAGES,
    MIN_MULTI_IMAGES,
    CropSearchRequest,
    DetectingImageQuery,
    FusionSearchRequest,
    MultiSearchRequest,
    SearchEnvelope,
    SimilarSearchRequest,
    TextSearchRequest,
    UrlSearchRequest,
    VoiceSearchRequest,
)
from trooply.vision.query_image import QueryImage

router = APIRouter(prefix="/v1/search", tags=["search"], route_class=StrictJsonRoute)
# Envelope keys that only some modes or options fill: left out rather than sent as null.
OPTIONAL_KEYS = ("transcript", "detection", "interpreted", "group_by", "keyword_weight", "keywords_fallback")


def envelope_response(envelope: SearchEnvelope) -> Response:
    # Serialised once by pydantic, not validated again by FastAPI: this is the hot path.
    exclude: dict[str, Any] = {key: True for key in OPTIONAL_KEYS if getattr(envelope, key) is None}
    if envelope.group_by is None:
        exclude["results"] = {"__all__": {"group"}}
    return Response(envelope.model_dump_json(by_alias=True, exclude=exclude), media_type="application/json")


@router.post("/text", response_model=SearchEnvelope)
def search_text(request: TextSearchRequest, principal: SearchPrincipal, search: SearchDep):
    return envelope_response(search.search_text(principal.tenant_id, request.query, request, request.interpret))


@router.post("/similar", response_model=SearchEnvelope)
def search_similar(request: SimilarSearchRequest, principal: SearchPrincipal, search: SearchDep):
    """More like a catalogue product (its stored vector: no fetch, no encode); the product itself is left out."""
    return envelope_response(search.search_similar(principal.tenant_id, request.product_id, request))


@router.post("/url", response_model=SearchEnvelope)
async def search_url(request: UrlSearchRequest, principal: SearchPrincipal, search: SearchDep,
                     fetcher: QueryFetcherDep):
    image = await fetched(fetcher, principal.tenant_id, QueryImage(url=request.image_url))
    return await _run(search.search_image, principal.tenant_id, image, request, request.detect, request.detect_class)


@router.post("/image", response_model=SearchEnvelope, openapi_extra=body_openapi(
    DetectingImageQuery, {"file": "the query image"}, json_body=False))
async def search_image(request: Request, principal: SearchPrincipal, search: SearchDep, settings: SettingsDep):
    options, files = await read_query(request, DetectingImageQuery, settings.images.max_upload_bytes)
    if not files:
        raise InvalidRequest("upload the query image as the multipart field `file`", code="image_required")
    return await _run(search.search_image, principal.tenant_id, QueryImage(data=files[0]), options,
                      options.detect, options.detect_class)


@router.post("/crop", response_model=SearchEnvelope, openapi_extra=body_openapi(CropSearchRequest, ONE_IMAGE))
async def search_crop(request: Request, principal: SearchPrincipal, search: SearchDep, fetcher: QueryFetcherDep,
                      settings: SettingsDep):
    options, files = await read_query(request, CropSearchRequest, settings.images.max_upload_bytes)
    image = await fetched(fetcher, principal.tenant_id, one_image(options, files))
    return await _run(search.search_crop, principal.tenant_id, image, options.bbox, options)


@router.post("/multi", response_model=SearchEnvelope, openapi_extra=body_openapi(
    MultiSearchRequest, {"files": "2 to 5 query images (with image_urls, 2 to 5 in all)"}))
async def search_multi(request: Request, principal: SearchPrincipal, search: SearchDep, fetcher: QueryFetcherDep,
                       settings: SettingsDep):
    options, files = await read_query(request, MultiSearchRequest, settings.images.max_upload_bytes)
    images = [QueryImage(url=url) for url in options.image_urls or ()] + [QueryImage(data=d) for d in files]
    if MIN_MULTI_IMAGES <= len(images) <= MAX_MULTI_IMAGES:  # else the service says how many it takes
        images = await fetched_all(fetcher, principal.tenant_id, images)
    return await _run(search.search_multi, principal.tenant_id, images, options)


@router.post("/fusion", response_model=SearchEnvelope, openapi_extra=body_openapi(FusionSearchRequest, ONE_IMAGE))
async def search_fusion(request: Request, principal: SearchPrincipal, search: SearchDep, fetcher: QueryFetcherDep,
                        settings: SettingsDep):
    options, files = await read_query(request, FusionSearchRequest, settings.images.max_upload_bytes)
    image = await fetched(fetcher, principal.tenant_id, one_image(options, files))
    return await _run(search.search_fusion, principal.tenant_id, image, options.text, options.image_weight, options,
                      options.interpret)


@router.post("/voice", response_model=SearchEnvelope, openapi_extra=body_openapi(
    VoiceSearchRequest, {"audio": "the spoken query: WAV, MP3, WebM/Opus or OGG"}, json_body=False))
async def search_voice(request: Request, principal: SearchPrincipal, search: SearchDep, settings: SettingsDep):
    options, files = await read_query(request, VoiceSearchRequest, settings.voice.max_audio_bytes,
                                      file_fields=("audio",))
    if len(files) != 1:
        raise InvalidRequest("upload one recording as the multipart field `audio`", code="audio_required")
    return await _run(search.search_voice, principal.tenant_id, files[0], options, options.interpret)


async def _run(search, *args) -> Response:
    # Decoding, CLIP and Whisper are CPU-bound: never on the event loop.
    return envelope_response(await run_in_threadpool(search, *args))
