"""Search analytics for the merchant: an overview per interval (searches, zero results, click-through, click
position, add-to-cart, conversion, revenue; split by mode and profile), top queries and top products, read from
the aggregated counters. Times are UTC; a window [from, to) is widened to whole intervals (the overview) or days
(the tables), and the answer names the window it counted."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from trooply.analytics.counting import epoch_hour
from trooply.analytics.repository import PRODUCT_SORTS, QUERY_SORTS, SEARCH_COUNTERS, AnalyticsRepository
from trooply.analytics.schemas import (
    IntervalMetrics,
    Metrics,
    Overview,
    ProductReport,
    ProductRow,
    QueryReport,
    QueryRow,
)
from trooply.db import Database, utcnow
from trooply.errors import InvalidRequest

INTERVAL_HOURS = {"hour": 1, "day": 24}
DEFAULT_WINDOW = timedelta(days=7)
MAX_HOURLY_BUCKETS = 24 * 31  # an hourly series is for a month at most
DAY_LEADERS = 200  # candidates per day for the top-queries report


def _bad(parameter: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{parameter}: {message}", code="invalid_parameter", details={"parameter": parameter})


def parse_time(parameter: str, raw: str | None) -> datetime | None:
    """An ISO 8601 date or date-time (UTC when it names no offset) as naive UTC; None when not given."""
    if raw is None or raw == "":
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise _bad(parameter, f"{raw[:40]!r} is not an ISO 8601 date or date-time") from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


class AnalyticsService:
    def __init__(self, db: Database, retention_days: int) -> None:
        self.db = db
        self.retention = timedelta(days=retention_days)

    def window(self, start_raw: str | None, end_raw: str | None) -> tuple[datetime, datetime]:
        """[from, to): `to` defaults to now, `from` to a week before `to`; 422 naming the parameter when either
        does not parse, `to` is not after `from`, or the window is longer than the retention."""
        end = parse_time("to", end_raw) or utcnow()
        start = parse_time("from", start_raw) or end - DEFAULT_WINDOW
        if end <= start:
            raise _bad("to", "must be after from")
        if end - start > self.retention:
            raise _bad("from", f"the window may span {self.retention.days} days at most (the analytics retention)")
        return start, end

    def overview(self, tenant_id: str, start: datetime, end: datetime, interval: str) -> Overview:
        if interval not in INTERVAL_HOURS:
            raise _bad("interval", f"use one of {', '.join(INTERVAL_HOURS)}")
        hours = INTERVAL_HOURS[interval]
        first, last = _hour_floor(start), _hour_ceil(end)
        first_bucket, end_bucket = first // hours, -(-last // hours)
        if end_bucket - first_bucket > MAX_HOURLY_BUCKETS and interval == "hour":
            raise _bad("interval", f"an hourly series covers {MAX_HOURLY_BUCKETS // 24} days at most; use day")
        with self.db.session() as session:
            repo = AnalyticsRepository(session, tenant_id)
            rows = repo.search_counts(first_bucket * hours, end_bucket * hours, hours)
            revenue = repo.revenue(first_bucket * hours, end_bucket * hours, hours)
        per_bucket: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SEARCH_COUNTERS, 0))
        per_mode: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SEARCH_COUNTERS, 0))
        per_profile: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SEARCH_COUNTERS, 0))
        totals = dict.fromkeys(SEARCH_COUNTERS, 0)
        for bucket, mode, profile, *sums in rows:
            for target in (per_bucket[bucket], per_mode[mode], per_profile[profile or "none"], totals):
                for name, value in zip(SEARCH_COUNTERS, sums, strict=True):
                    target[name] += int(value or 0)
        money: dict[int, dict[str, float]] = defaultdict(dict)
        total_money: dict[str, float] = defaultdict(float)
        for bucket, currency, _purchases, amount in revenue:
            money[bucket][currency] = round(float(amount or 0.0), 2)
            total_money[currency] += float(amount or 0.0)
        series = [IntervalMetrics(start=_from_hour(bucket * hours), **_metrics(per_bucket.get(bucket), money[bucket]))
                  for bucket in range(first_bucket, end_bucket)]
        return Overview(start=_from_hour(first_bucket * hours), end=_from_hour(end_bucket * hours), interval=interval,
                        totals=Metrics(**_metrics(totals, {c: round(v, 2) for c, v in total_money.items()})),
                        series=series, by_mode={mode: Metrics(**_metrics(c)) for mode, c in sorted(per_mode.items())},
                        by_profile={p: Metrics(**_metrics(c)) for p, c in sorted(per_profile.items())})

    def queries(self, tenant_id: str, start: datetime, end: datetime, sort: str, limit: int) -> QueryReport:
        if sort not in QUERY_SORTS:
            raise _bad("sort", f"use one of {', '.join(QUERY_SORTS)}")
        first, last = _day_floor(start), _day_ceil(end)
        with self.db.session() as session:
            rows = top_queries(AnalyticsRepository(session, tenant_id), first, last,
                               cast(Literal["count", "no_results", "no_clicks"], sort), limit)
        return QueryReport(start=_from_hour(first * 24), end=_from_hour(last * 24), sort=sort, queries=[
            QueryRow(query=query, searches=searches, zero_results=zero, zero_result_rate=round(zero / searches, 4),
                     clicks=clicks, click_through_rate=round(clicked / searches, 4))
            for query, searches, zero, clicked, clicks in rows])

    def products(self, tenant_id: str, start: datetime, end: datetime, sort: str, limit: int) -> ProductReport:
        if sort not in PRODUCT_SORTS:
            raise _bad("sort", f"use one of {', '.join(PRODUCT_SORTS)}")
        first, last = _day_floor(start), _day_ceil(end)
        with self.db.session() as session:
            rows = AnalyticsRepository(session, tenant_id).top_products(
                first, last, cast(Literal["clicks", "conversions"], sort), limit)
        return ProductReport(start=_from_hour(first * 24), end=_from_hour(last * 24), sort=sort, products=[
            ProductRow(product_id=product_id, clicks=clicks, add_to_carts=carts, purchases=purchases)
            for product_id, clicks, carts, purchases in rows])


def top_queries(repo: AnalyticsRepository, first_day: int, end_day: int,
                sort: Literal["count", "no_results", "no_clicks"], limit: int) -> list[tuple[Any, ...]]:
    """The window's best `limit` queries by the sort's measure, exactly, without summing every query of a busy
    month (a long tail of a million queries seen once): each day's DAY_LEADERS best are the candidates, and a
    query that is none of them has, on each day, at most that day's last leader's count, so at most `bound` in
    all. When the limit-th candidate beats `bound`, nobody left out can enter the list; otherwise (a flat
    distribution, a short window of a small shop where this is cheap anyway) every query is summed."""
    k = max(DAY_LEADERS, limit * 4)
    leaders = [repo.day_leaders(day, sort, k) for day in range(first_day, end_day)]
    bound = sum(day[-1][1] for day in leaders if len(day) == k)  # days with fewer than k rows hold no one else
    candidates = {query for day in leaders for query, _ in day}
    measure = {"count": 1, "no_results": 2, "no_clicks": 1}[sort]
    ranked = sorted((row for row in repo.query_totals(first_day, end_day, candidates) if _qualifies(row, sort)),
                    key=lambda row: (-row[measure], row[0]))
    if bound == 0 or (len(ranked) >= limit and ranked[limit - 1][measure] > bound):
        return ranked[:limit]
    return repo.top_queries(first_day, end_day, sort, limit)


def _qualifies(row: tuple[Any, ...], sort: str) -> bool:
    _query, _searches, zero, clicked, _clicks = row
    return (sort != "no_results" or zero > 0) and (sort != "no_clicks" or clicked == 0)


def _metrics(counts: dict[str, int] | None, revenue: dict[str, float] | None = None) -> dict[str, Any]:
    c = counts or dict.fromkeys(SEARCH_COUNTERS, 0)
    searches = c["searches"]

    def rate(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {"searches": searches, "zero_results": c["zero_results"],
            "zero_result_rate": rate(c["zero_results"], searches),
            "clicks": c["clicks"], "click_through_rate": rate(c["searches_clicked"], searches),
            "average_click_position": round(c["click_position_sum"] / c["clicks"] + 1, 2) if c["clicks"] else None,
            "add_to_carts": c["add_to_carts"], "add_to_cart_rate": rate(c["searches_carted"], searches),
            "purchases": c["purchases"], "conversion_rate": rate(c["searches_purchased"], searches),
            "revenue": revenue or {}}


def _hour_floor(at: datetime) -> int:
    return epoch_hour(at)


def _hour_ceil(at: datetime) -> int:
    floor = epoch_hour(at)
    return floor + (_from_hour(floor) < at)


def _day_floor(at: datetime) -> int:
    return epoch_hour(at) // 24


def _day_ceil(at: datetime) -> int:
    return -(-_hour_ceil(at) // 24)


def _from_hour(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC).replace(tzinfo=None)
