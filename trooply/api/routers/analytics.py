"""Search analytics for the merchant (secret key): the overview per interval, top queries, top products."""

from typing import Annotated

from fastapi import APIRouter, Query

from trooply.analytics.schemas import Overview, ProductReport, QueryReport
from trooply.api.deps import AnalyticsDep, CatalogPrincipal

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
From = Annotated[str | None, Query(alias="from", max_length=40, description="ISO 8601 date or date-time (UTC); "
                                   "default: a week before `to`")]
To = Annotated[str | None, Query(alias="to", max_length=40, description="ISO 8601, exclusive; default: now")]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/overview", response_model=Overview, response_model_by_alias=True)
def overview(principal: CatalogPrincipal, analytics: AnalyticsDep, start: From = None, end: To = None,
             interval: Annotated[str, Query(max_length=10, description="hour or day")] = "day"):
    """Per interval and in total: searches, zero-result searches and rate, click-through rate, average click
    position, add-to-cart and conversion rates, revenue per currency; split by mode and by profile."""
    window = analytics.window(start, end)
    return analytics.overview(principal.tenant_id, *window, interval)


@router.get("/queries", response_model=QueryReport, response_model_by_alias=True)
def queries(principal: CatalogPrincipal, analytics: AnalyticsDep, start: From = None, end: To = None,
            sort: Annotated[str, Query(max_length=20, description="count | no_results | no_clicks")] = "count",
            limit: Limit = 50):
    """Top text queries (normalised), queries that found nothing, queries nobody clicked."""
    window = analytics.window(start, end)
    return analytics.queries(principal.tenant_id, *window, sort, limit)


@router.get("/products", response_model=ProductReport, response_model_by_alias=True)
def products(principal: CatalogPrincipal, analytics: AnalyticsDep, start: From = None, end: To = None,
             sort: Annotated[str, Query(max_length=20, description="clicks | conversions")] = "clicks",
             limit: Limit = 50):
    """The most clicked, or most bought, products from search results."""
    window = analytics.window(start, end)
    return analytics.products(principal.tenant_id, *window, sort, limit)
