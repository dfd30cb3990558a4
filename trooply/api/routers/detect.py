"""Fashion item detection and per-item embeddings. Both take JSON (`image_url`) or multipart (`file`)."""

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ConfigDict, Field

from trooply.api.body import StrictJsonRoute, body_openapi
from trooply.api.deps import CatalogPrincipal, ContainerDep, SearchPrincipal
from trooply.api.routers.search import ONE_IMAGE, fetched, one_image, read_query
from trooply.items.service import MAX_ITEMS
from trooply.search.schemas import ImageQuery

router = APIRouter(prefix="/v1", tags=["detection"], route_class=StrictJsonRoute)


class DetectRequest(ImageQuery):
    model_config = ConfigDict(extra="forbid")

    top_k: int = Field(ge=1, le=MAX_ITEMS)
    classes: list[int] | None = Field(None, min_length=1, max_length=10)
    return_image: bool = False


class EmbedRequest(ImageQuery):
    model_config = ConfigDict(extra="forbid")

    bounding_boxes: list[Annotated[list[float], Field(min_length=4, max_length=4)]] | None = Field(
        None, min_length=1, max_length=MAX_ITEMS)
    top_k: int | None = Field(None, ge=1, le=MAX_ITEMS)
    text: str | Annotated[list[Annotated[str, Field(min_length=1, max_length=500)]],
                          Field(min_length=1, max_length=20)] | None = None
    with_tag: bool = False
    with_embedding: bool = True


@router.post("/detect", openapi_extra=body_openapi(DetectRequest, ONE_IMAGE))
async def detect(request: Request, principal: SearchPrincipal, container: ContainerDep) -> dict[str, Any]:
    query, files = await read_query(request, DetectRequest, container.settings.max_upload_bytes)
    image = await fetched(container, principal.tenant_id, one_image(query, files))
    result = await run_in_threadpool(container.items.detect, principal.tenant_id, image,
                                     query.top_k, query.classes, query.return_image)
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
async def embed(request: Request, principal: SearchPrincipal, container: ContainerDep) -> dict[str, Any]:
    query, files = await read_query(request, EmbedRequest, container.settings.max_upload_bytes)
    image = await fetched(container, principal.tenant_id, one_image(query, files))
    result = await run_in_threadpool(container.items.embed, principal.tenant_id, image, query.bounding_boxes,
                                     query.top_k, query.text, query.with_tag, query.with_embedding)
    body: dict[str, Any] = {"bounding_boxes": [[round(v, 1) for v in box] for box in result.boxes]}
    if result.tags is not None:
        body["tags"] = [[label, confidence] for label, confidence in result.tags]
    if result.embeddings is not None:
        body["embeddings"] = [[round(float(v), 6) for v in row] for row in result.embeddings]
    if result.text_relevance is not None:
        body["text_relevance_scores"] = result.text_relevance
    return body


@router.get("/usage")
def usage(principal: CatalogPrincipal, container: ContainerDep) -> dict[str, Any]:
    return container.usage.report(principal.tenant_id, principal.plan)
