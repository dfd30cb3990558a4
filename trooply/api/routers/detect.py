"""Fashion item detection and per-item embeddings. Both take JSON (`image_url`) or multipart (`file`)."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ConfigDict

from trooply.api.body import StrictJsonRoute, body_openapi
from trooply.api.deps import DetectionDep, QueryFetcherDep, SearchPrincipal, SettingsDep
from trooply.api.forms import ONE_IMAGE, read_query
from trooply.api.query_images import fetched, one_image
from trooply.detection.schemas import DetectOptions, EmbedOptions
from trooply.search.schemas import ImageQuery

router = APIRouter(prefix="/v1", tags=["detection"], route_class=StrictJsonRoute)


# The items domain sits below search, so the image fields (search's ImageQuery) join its options here.
class DetectRequest(DetectOptions, ImageQuery):
    model_config = ConfigDict(extra="forbid")


class EmbedRequest(EmbedOptions, ImageQuery):
    model_config = ConfigDict(extra="forbid")


@router.post("/detect", openapi_extra=body_openapi(DetectRequest, ONE_IMAGE))
async def detect(request: Request, principal: SearchPrincipal, items: DetectionDep, fetcher: QueryFetcherDep,
                 settings: SettingsDep) -> dict[str, Any]:
    query, files = await read_query(request, DetectRequest, settings.images.max_upload_bytes)
    image = await fetched(fetcher, principal.tenant_id, one_image(query, files))
    result = await run_in_threadpool(items.detect, principal.tenant_id, image, query.top_k, query.classes,
                                     query.return_image)
    body = {"image_width": result.width, "image_height": result.height, "detections": [
        {"class_id": item.detection.class_id, "class_name": item.detection.class_name, "score": item.detection.score,
         "bounding_box": [round(v, 1) for v in item.detection.box], "area_ratio": item.area_ratio,
         "center_distance_ratio": item.center_distance_ratio} for item in result.items],
        "timings": {"proposals_ms": round(result.timings.proposals_ms, 2),
                    "scoring_ms": round(result.timings.scoring_ms, 2), "nms_ms": round(result.timings.nms_ms, 2)}}
    if result.annotated_png is not None:
        body["annotated_image"] = result.annotated_png
    return body


@router.post("/embed", openapi_extra=body_openapi(EmbedRequest, ONE_IMAGE))
async def embed(request: Request, principal: SearchPrincipal, items: DetectionDep, fetcher: QueryFetcherDep,
                settings: SettingsDep) -> dict[str, Any]:
    query, files = await read_query(request, EmbedRequest, settings.images.max_upload_bytes)
    image = await fetched(fetcher, principal.tenant_id, one_image(query, files))
    result = await run_in_threadpool(items.embed, principal.tenant_id, image, query.bounding_boxes, query.top_k,
                                     query.text, query.with_tag, query.with_embedding)
    body: dict[str, Any] = {"bounding_boxes": [[round(v, 1) for v in box] for box in result.boxes]}
    if result.tags is not None:
        body["tags"] = [[label, confidence] for label, confidence in result.tags]
    if result.embeddings is not None:
        body["embeddings"] = [[round(float(v), 6) for v in row] for row in result.embeddings]
    if result.text_relevance is not None:
        body["text_relevance_scores"] = result.text_relevance
    return body
