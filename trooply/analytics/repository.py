"""Analytics counters in SQL: added to by upserts (INSERT … ON CONFLICT DO UPDATE, on SQLite and PostgreSQL),
read by sums over a window; and the retention sweep across tenants."""

from collections.abc import Collection
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, CursorResult, Select, delete, func
from sqlalchemy.dialects import postgresql, sqlite

from trooply.analytics.counting import Increments
from trooply.analytics.models import ProductDay, QueryDay, RevenueBucket, SearchBucket
from trooply.db import Base, MaintenanceRepository, TenantScopedRepository

SEARCH_COUNTERS = ("searches", "zero_results", "searches_clicked", "clicks", "click_position_sum", "searches_carted",
                   "add_to_carts", "searches_purchased", "purchases")
QUERY_SORTS = {"count": "searches", "no_results": "zero_results", "no_clicks": "searches"}
PRODUCT_SORTS = {"clicks": "clicks", "conversions": "purchases"}
IN_LIST_CHUNK = 5000  # SQLite binds at most 32,766 parameters a statement


def _counters(model: type[Base]) -> list[str]:
    keys = {column.name for column in model.__table__.primary_key.columns}  # type: ignore[attr-defined]
    return [column.name for column in model.__table__.columns if column.name not in keys]  # type: ignore[attr-defined]


def _keys(model: type[Base]) -> list[str]:
    return [column.name for column in model.__table__.primary_key.columns  # type: ignore[attr-defined]
            if column.name != "tenant_id"]


class AnalyticsRepository(TenantScopedRepository):
    def add(self, increments: Increments) -> None:
        """Adds every counter of `increments`: one executemany upsert per table."""
        insert = postgresql.insert if self.session.get_bind().dialect.name == "postgresql" else sqlite.insert
        for model, rows in increments.items():
            counters, keys = _counters(model), _keys(model)
            # In key order: concurrent writers then lock rows in the same order (no deadlock on PostgreSQL).
            values = [{"tenant_id": self.tenant_id, **dict(zip(keys, key, strict=True)),
                       **{name: amounts.get(name, 0) for name in counters}} for key, amounts in sorted(rows.items())]
            if not values:
                continue
            statement = insert(model)
            statement = statement.on_conflict_do_update(
                index_elements=["tenant_id", *keys],
                set_={name: getattr(model, name) + getattr(statement.excluded, name) for name in counters})
            self.session.execute(statement, values)

    def search_counts(self, first_hour: int, end_hour: int, hours_per_bucket: int) -> list[tuple[Any, ...]]:
        """(bucket, mode, profile, *SEARCH_COUNTERS) summed per bucket of `hours_per_bucket` hours."""
        bucket = (SearchBucket.hour // hours_per_bucket).label("bucket")
        sums = [func.sum(getattr(SearchBucket, name)).label(name) for name in SEARCH_COUNTERS]
        return self._rows(
            self._select(SearchBucket, bucket, SearchBucket.mode, SearchBucket.profile, *sums)
            .where(SearchBucket.hour >= first_hour, SearchBucket.hour < end_hour)
            .group_by(bucket, SearchBucket.mode, SearchBucket.profile))

    def revenue(self, first_hour: int, end_hour: int, hours_per_bucket: int) -> list[tuple[Any, ...]]:
        """(bucket, currency, purchases, revenue) per bucket."""
        bucket = (RevenueBucket.hour // hours_per_bucket).label("bucket")
        return self._rows(
            self._select(RevenueBucket, bucket, RevenueBucket.currency, func.sum(RevenueBucket.purchases),
                         func.sum(RevenueBucket.revenue))
            .where(RevenueBucket.hour >= first_hour, RevenueBucket.hour < end_hour)
            .group_by(bucket, RevenueBucket.currency))

    def top_queries(self, first_day: int, end_day: int, sort: Literal["count", "no_results", "no_clicks"],
                    limit: int) -> list[tuple[Any, ...]]:
        """(query, searches, zero_results, searches_clicked, clicks) over the window, best first by `sort`."""
        sums = {name: func.sum(getattr(QueryDay, name)).label(name)
                for name in ("searches", "zero_results", "searches_clicked", "clicks")}
        statement = (self._select(QueryDay, QueryDay.query, *sums.values())
                     .where(QueryDay.day >= first_day, QueryDay.day < end_day).group_by(QueryDay.query))
        order: ColumnElement[Any] = sums[QUERY_SORTS[sort]]
        if sort == "no_results":
            statement = statement.having(sums["zero_results"] > 0)
        elif sort == "no_clicks":
            statement = statement.having(sums["searches_clicked"] == 0)
        return self._rows(statement.order_by(order.desc(), QueryDay.query).limit(limit))

    def day_leaders(self, day: int, sort: Literal["count", "no_results", "no_clicks"], k: int) -> list[tuple[str, int]]:
        """The day's `k` best queries by the sort's measure, best first (no_results: among those that found nothing;
        no_clicks: among those nobody clicked that day). An index makes this k rows, whatever the day holds."""
        measure = getattr(QueryDay, QUERY_SORTS[sort])
        statement = self._select(QueryDay, QueryDay.query, measure).where(QueryDay.day == day)
        if sort == "no_results":
            statement = statement.where(QueryDay.zero_results > 0)
        elif sort == "no_clicks":
            statement = statement.where(QueryDay.searches_clicked == 0)
        return [(query, int(value)) for query, value in self._rows(statement.order_by(measure.desc()).limit(k))]

    def query_totals(self, first_day: int, end_day: int, queries: Collection[str]) -> list[tuple[Any, ...]]:
        """(query, searches, zero_results, searches_clicked, clicks) over the window, for these queries only."""
        sums = [func.sum(getattr(QueryDay, name))
                for name in ("searches", "zero_results", "searches_clicked", "clicks")]
        chosen, rows = sorted(queries), []
        for start in range(0, len(chosen), IN_LIST_CHUNK):
            rows += self._rows(self._select(QueryDay, QueryDay.query, *sums)
                               .where(QueryDay.day >= first_day, QueryDay.day < end_day,
                                      QueryDay.query.in_(chosen[start:start + IN_LIST_CHUNK]))
                               .group_by(QueryDay.query))
        return rows

    def top_products(self, first_day: int, end_day: int, sort: Literal["clicks", "conversions"],
                     limit: int) -> list[tuple[Any, ...]]:
        """(product id, clicks, add_to_carts, purchases) over the window, best first by `sort`."""
        sums = {name: func.sum(getattr(ProductDay, name)).label(name)
                for name in ("clicks", "add_to_carts", "purchases")}
        order = sums[PRODUCT_SORTS[sort]]
        return self._rows(
            self._select(ProductDay, ProductDay.product_id, *sums.values())
            .where(ProductDay.day >= first_day, ProductDay.day < end_day).group_by(ProductDay.product_id)
            .having(order > 0).order_by(order.desc(), ProductDay.product_id).limit(limit))

    def _rows(self, statement: Select) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.session.execute(statement)]


class AnalyticsRetention(MaintenanceRepository):
    def drop_counters_before(self, hour: int) -> int:
        """The retention sweep, across tenants: counters older than the analytics retention."""
        day = hour // 24
        dropped = 0
        for statement in (delete(SearchBucket).where(SearchBucket.hour < hour),
                          delete(RevenueBucket).where(RevenueBucket.hour < hour),
                          delete(QueryDay).where(QueryDay.day < day), delete(ProductDay).where(ProductDay.day < day)):
            dropped += cast(CursorResult, self.session.execute(statement)).rowcount
        return dropped
