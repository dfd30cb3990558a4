"""Catalogue operations beside the product CRUD: status counts, retrying failures, recent jobs, a product's
stored image signals, and bulk import of a CSV or JSONL file (the portal's upload)."""

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from trooply.api.body import StrictJsonRoute, body_openapi
from trooply.api.deps import CatalogDep, CatalogPrincipal, FeedsDep, ProductIdPath
from trooply.api.forms import read_form
from trooply.catalog.imports import catalog_sender, decode_text, format_of, read_rows, submit_rows
from trooply.catalog.schemas import (
    CatalogStats,
    ImportOptions,
    ImportOut,
    JobList,
    ProductSignalsOut,
    RetryOut,
    RetryRequest,
)
from trooply.errors import InvalidRequest

# Retrying names up to 1,000 ids of up to 256 characters.
router = APIRouter(prefix="/v1", tags=["catalog"], route_class=StrictJsonRoute.with_json_cap(1024 * 1024))


@router.get("/catalog/stats", response_model=CatalogStats)
def catalog_stats(principal: CatalogPrincipal, catalog: CatalogDep):
    return catalog.stats(principal.tenant_id, principal.plan)


@router.post("/products/retry", status_code=202, response_model=RetryOut)
def retry_failed(principal: CatalogPrincipal, catalog: CatalogDep,
                 request: Annotated[RetryRequest | None, Body()] = None):
    ids = request.ids if request is not None else None
    return catalog.retry_failed(principal.tenant_id, ids)


@router.get("/products/{product_id}/signals", response_model=ProductSignalsOut)
def product_signals(product_id: ProductIdPath, principal: CatalogPrincipal, catalog: CatalogDep):
    return catalog.image_signals(principal.tenant_id, product_id)


@router.get("/jobs", response_model=JobList)
def recent_jobs(principal: CatalogPrincipal, catalog: CatalogDep,
                limit: Annotated[int, Query(ge=1, le=100)] = 20):
    return {"jobs": catalog.recent_jobs(principal.tenant_id, limit)}


@router.post("/imports", status_code=202, response_model=ImportOut, openapi_extra=body_openapi(
    ImportOptions, {"file": "the products: .csv (attributes as attributes.NAME columns) or .jsonl"}, json_body=False))
async def import_file(request: Request, principal: CatalogPrincipal, catalog: CatalogDep, feeds: FeedsDep):
    with catalog.imports.held(principal.tenant_id):  # one import per tenant at a time, from its first byte
        await run_in_threadpool(feeds.check_not_syncing, principal.tenant_id)  # nor during a worker's feed sync
        form = await read_form(request)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("upload the products as the multipart field `file`", code="file_required")
        try:
            options = ImportOptions.model_validate({name: value for name, value in form.items() if name != "file"})
        except ValidationError as error:
            problem = error.errors()[0]
            raise InvalidRequest(f"{'.'.join(str(p) for p in problem['loc']) or 'form'}: {problem['msg']}",
                                 code="validation_error") from error
        fmt = format_of(upload.filename, options.format)
        data = await upload.read()
        if not data:
            raise InvalidRequest("`file` is empty", code="empty_upload")
        send = catalog_sender(catalog, principal.tenant_id, options.skip_unchanged, fmt)
        # Parsing, validating and queueing thousands of rows is CPU and SQL work: off the event loop.
        return await run_in_threadpool(lambda: submit_rows(read_rows(decode_text(data), fmt), send))
