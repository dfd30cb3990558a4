"""What the analytics endpoints answer."""

from datetime import datetime

from pydantic import BaseModel, Field


class Metrics(BaseModel):
    searches: int
    zero_results: int
    zero_result_rate: float | None = Field(description="zero-result searches ÷ searches; null without searches")
    clicks: int
    click_through_rate: float | None = Field(description="searches with at least one click ÷ searches")
    average_click_position: float | None = Field(description="1 = the first result; null without clicks")
    add_to_carts: int
    add_to_cart_rate: float | None = Field(description="searches with at least one add-to-cart ÷ searches")
    purchases: int
    conversion_rate: float | None = Field(description="searches with at least one purchase ÷ searches")
    revenue: dict[str, float] = Field(default_factory=dict, description="purchase amounts per currency")


class IntervalMetrics(Metrics):
    start: datetime


class Overview(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    interval: str
    totals: Metrics
    series: list[IntervalMetrics] = Field(description="every interval of the window, empty ones included")
    by_mode: dict[str, Metrics]
    by_profile: dict[str, Metrics] = Field(description='"none": searches without a profile')


class QueryRow(BaseModel):
    query: str
    searches: int
    zero_results: int
    zero_result_rate: float
    clicks: int
    click_through_rate: float


class QueryReport(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    sort: str
    queries: list[QueryRow]


class ProductRow(BaseModel):
    product_id: str
    clicks: int
    add_to_carts: int
    purchases: int


class ProductReport(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    sort: str
    products: list[ProductRow]
