from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from trooply.api.body import StrictJsonRoute
from trooply.api.deps import CatalogDep, CatalogPrincipal, ProductIdPath
from trooply.catalog.schemas import JobOut, ProductOut, ProductPage, ProductPatch, SubmissionOut, read_product_batch

# A batch of products may use the app's whole JSON cap (TROOPLY_MAX_JSON_BODY_BYTES).
router = APIRouter(prefix="/v1", tags=["catalog"], route_class=StrictJsonRoute.with_json_cap(None))


@router.post("/products", status_code=202, response_model=SubmissionOut)
def submit_products(principal: CatalogPrincipal, catalog: CatalogDep,
                    body: Annotated[Any, Body(description="a product, or {\"products\": [...]} (up to 1,000)")],
                    skip_unchanged: Annotated[bool, Query(description=(
                        "answer products stored with the same image URL and metadata `unchanged` and queue "
                        "nothing for them (a resumed import)"))] = False):
    submission = catalog.submit_batch(principal.tenant_id, read_product_batch(body), skip_unchanged)
    return SubmissionOut(job_id=submission.job_id, accepted=submission.accepted, rejected=submission.rejected,
                         unchanged=submission.unchanged, products=[vars(p) for p in submission.products])


@router.get("/products", response_model=ProductPage)
def list_products(principal: CatalogPrincipal, catalog: CatalogDep,
                  status: Annotated[str | None, Query(description="pending, indexed or failed")] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  after: Annotated[str | None, Query(description="the last id of the previous page")] = None):
    records = catalog.list(principal.tenant_id, status, limit, after)
    return ProductPage(products=[ProductOut.of(r) for r in records],
                       next_after=records[-1].id if len(records) == limit else None)


@router.get("/products/{product_id}", response_model=ProductOut)
def get_product(product_id: ProductIdPath, principal: CatalogPrincipal, catalog: CatalogDep):
    return ProductOut.of(catalog.get(principal.tenant_id, product_id))


@router.patch("/products/{product_id}", response_model=ProductOut)
def patch_product(product_id: ProductIdPath, patch: ProductPatch, principal: CatalogPrincipal, catalog: CatalogDep):
    return ProductOut.of(catalog.patch(principal.tenant_id, product_id, patch))


@router.delete("/products/{product_id}", status_code=204)
def delete_product(product_id: ProductIdPath, principal: CatalogPrincipal, catalog: CatalogDep) -> Response:
    catalog.delete(principal.tenant_id, product_id)
    return Response(status_code=204)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: str, principal: CatalogPrincipal, catalog: CatalogDep):
    return catalog.job(principal.tenant_id, job_id)
