import json
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from pydantic import ValidationError

from trooply.api.deps import ContainerDep, SearchPrincipal
from trooply.errors import InvalidRequest, PayloadTooLarge
from trooply.search.schemas import SearchEnvelope, SearchOptions, TextSearchRequest, UrlSearchRequest

router = APIRouter(prefix="/v1/search", tags=["search"])
# Serialised once by pydantic, not validated again by FastAPI: this is the hot path.
ENVELOPE = {"response_model": SearchEnvelope}


def envelope_response(envelope: SearchEnvelope) -> Response:
    return Response(envelope.model_dump_json(by_alias=True), media_type="application/json")


@router.post("/text", **ENVELOPE)
def search_text(request: TextSearchRequest, principal: SearchPrincipal, container: ContainerDep):
    return envelope_response(container.search.search_text(principal.tenant_id, request.query, request))


@router.post("/url", **ENVELOPE)
def search_url(request: UrlSearchRequest, principal: SearchPrincipal, container: ContainerDep):
    return envelope_response(container.search.search_url(principal.tenant_id, request.image_url, request))


@router.post("/image", **ENVELOPE)
def search_image(principal: SearchPrincipal, container: ContainerDep, file: Annotated[UploadFile, File()],
                 limit: Annotated[int | None, Form()] = None, threshold: Annotated[float | None, Form()] = None,
                 filters: Annotated[str | None, Form(description="JSON object")] = None,
                 profile: Annotated[str | None, Form()] = None, explain: Annotated[bool | None, Form()] = None):
    options = form_options(limit=limit, threshold=threshold, filters=filters, profile=profile, explain=explain)
    data = read_upload(file, container.settings.max_upload_bytes)
    return envelope_response(container.search.search_image(principal.tenant_id, data, options))


def form_options(**fields) -> SearchOptions:
    """The common search fields as multipart form fields; `filters` arrives as a JSON string."""
    if fields.get("filters") is not None:
        try:
            fields["filters"] = json.loads(fields["filters"])
        except json.JSONDecodeError as error:
            raise InvalidRequest(f"filters: not valid JSON ({error.msg})", code="invalid_filter") from error
    try:
        return SearchOptions.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(p) for p in problem["loc"])
        raise InvalidRequest(f"{field}: {problem['msg']}", code="validation_error") from error


def read_upload(file: UploadFile, max_bytes: int) -> bytes:
    # Read one byte past the cap so an oversized upload is refused without holding all of it.
    data = file.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the upload exceeds {max_bytes} bytes", code="upload_too_large")
    if not data:
        raise InvalidRequest("the uploaded file is empty", code="empty_upload")
    return data
