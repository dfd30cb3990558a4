"""Search analytics in SQL: how fast the search log and events are written (with their counters), and how fast a
30-day report reads once a busy month is in.

    .venv/bin/python bench/analytics.py --searches 200000 --events 20000 --month-searches 10000000
    .venv/bin/python bench/analytics.py --postgres ...      # the same on a throwaway PostgreSQL (Debian's package)

1. Ingest: `--searches` search log rows through the real writer (SearchLogWriter: batches of 500, each row and
   its counters in one transaction), spread over 30 days, then `--events` events through FeedbackService in
   batches of 1,000 (each checked against its search, stored, counted). Prints rows/s.
2. A month at scale: the counters a month of `--month-searches` searches leaves behind (hourly buckets per mode and
   profile, a Zipf-distributed query vocabulary per day, products per day), upserted directly: the report reads
   only counters, so their row count, not the raw log, is what its latency depends on.
3. Reports over the 30-day window: overview (interval=day), queries (each sort), products (each sort); p50/p95 of
   `--repeats` runs each. Target: under 500 ms.
"""

import argparse
import contextlib
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench._common import percentiles
from trooply.analytics.counting import epoch_hour
from trooply.analytics.models import ProductDay, QueryDay, RevenueBucket, SearchBucket
from trooply.analytics.repository import AnalyticsRepository
from trooply.analytics.service import AnalyticsService
from trooply.db import Database
from trooply.feedback.service import FeedbackService
from trooply.search.log_writer import SearchLogWriter
from trooply.search.models import SearchLog
from trooply.tenancy.service import TenantService

MODES = ["text", "image", "crop", "url", "fusion", "voice", "similar"]
MODE_SHARE = [0.6, 0.15, 0.05, 0.05, 0.05, 0.05, 0.05]
PROFILES = ["apparel", "footwear", "accessories", "home", "beauty", "electronics", "kids", "sports", "jewellery",
            "furniture", None]
WINDOW_DAYS = 30
UPSERT_ROWS = 20_000


def queries_vocabulary(size: int) -> list[str]:
    words = ["red", "blue", "black", "white", "linen", "leather", "summer", "running", "dress", "shoe", "bag", "shirt",
             "sneaker", "coat", "lamp", "chair", "ring", "watch", "kids", "wool", "silk", "vintage", "slim", "boots"]
    rng = random.Random(7)
    return [" ".join(rng.sample(words, rng.randint(1, 4))) + f" {i}" for i in range(size)]


@contextlib.contextmanager
def database(postgres: bool) -> Iterator[Database]:
    if postgres:
        from tests.support.postgres import postgres_server

        with postgres_server() as url:
            db = Database(url)
            db.migrate()
            yield db
            db.close()
        return
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'bench.db'}")
        db.migrate()
        yield db
        db.close()


def ingest(db: Database, tenant: str, searches: int, events: int, end: datetime, vocabulary: list[str]) -> None:
    rng = np.random.default_rng(1)
    writer = SearchLogWriter(db)
    ranks = rng.zipf(1.2, searches) % len(vocabulary)
    modes = rng.choice(len(MODES), searches, p=MODE_SHARE)
    ages = rng.uniform(0, WINDOW_DAYS * 86400, searches)
    results = rng.integers(0, 21, searches)  # 0 to 20 results; about 5% find nothing
    logged: list[tuple[str, int]] = []
    started = time.perf_counter()
    for i in range(searches):
        mode = MODES[modes[i]]
        ids = [f"p{(i * 7 + k) % 5000}" for k in range(results[i])]
        writer.write(SearchLog(id=f"s{i}", tenant_id=tenant, mode=mode, profile=PROFILES[i % len(PROFILES)],
                               product_ids=ids, took_ms=20.0, created_at=end - timedelta(seconds=float(ages[i])),
                               query=vocabulary[ranks[i]] if mode in ("text", "voice", "fusion") else None))
        if ids:
            logged.append((f"s{i}", len(ids)))
    writer.flush()
    elapsed = time.perf_counter() - started
    writer.close()
    print(f"search log: {searches:,} rows in {elapsed:.1f} s = {searches / elapsed:,.0f} rows/s "
          "(SearchLogWriter, rows and counters)")

    service = FeedbackService(db, writer)
    picks = rng.integers(0, len(logged), events)
    batch: list[dict] = []
    started = time.perf_counter()
    stored = 0
    for n, pick in enumerate(picks):
        search_id, count = logged[pick]
        position = int(min(count - 1, rng.geometric(0.3) - 1))
        kind = "click" if n % 10 < 8 else ("add_to_cart" if n % 10 == 8 else "purchase")
        event = {"type": kind, "search_id": search_id, "product_id": f"p{(int(search_id[1:]) * 7 + position) % 5000}",
                 "position": position, "event_id": f"e{n}"}
        if kind == "purchase":
            event |= {"value": 49.9, "currency": "EUR"}
        batch.append(event)
        if len(batch) == 1000:
            stored += service.record_events(tenant, batch).accepted
            batch = []
    if batch:
        stored += service.record_events(tenant, batch).accepted
    elapsed = time.perf_counter() - started
    print(f"events: {events:,} sent in batches of 1,000 in {elapsed:.1f} s = {events / elapsed:,.0f} events/s "
          f"({stored:,} stored, the rest repeats of the same action)")


def month_of_counters(db: Database, tenant: str, month_searches: int, end: datetime, vocabulary: list[str],
                      products: int) -> None:
    """The counters a month of `month_searches` searches leaves: written straight into the counter tables."""
    rng = np.random.default_rng(2)
    started = time.perf_counter()
    first_hour = epoch_hour(end) - WINDOW_DAYS * 24
    per_hour = month_searches / (WINDOW_DAYS * 24)
    buckets = []
    for hour in range(first_hour, first_hour + WINDOW_DAYS * 24):
        for m, mode in enumerate(MODES):
            for profile in PROFILES:
                searches = int(rng.poisson(per_hour * MODE_SHARE[m] / len(PROFILES)))
                clicked = int(searches * 0.3)
                buckets.append({"hour": hour, "mode": mode, "profile": profile or "", "searches": searches,
                                "zero_results": int(searches * 0.05), "searches_clicked": clicked,
                                "clicks": int(clicked * 1.3), "click_position_sum": int(clicked * 1.3 * 3),
                                "searches_carted": int(searches * 0.05), "add_to_carts": int(searches * 0.06),
                                "searches_purchased": int(searches * 0.02), "purchases": int(searches * 0.02)})
    text_per_day = month_searches * (MODE_SHARE[0] + MODE_SHARE[4] + MODE_SHARE[5]) / WINDOW_DAYS
    queries, product_rows, revenue = [], [], []
    for day in range(first_hour // 24, first_hour // 24 + WINDOW_DAYS):
        counts: dict[int, int] = defaultdict(int)
        for rank in rng.zipf(1.15, int(text_per_day)) % len(vocabulary):
            counts[int(rank)] += 1
        for rank, searches in counts.items():
            queries.append({"day": day, "query": vocabulary[rank], "searches": searches,
                            "zero_results": searches if rank % 40 == 0 else 0,
                            "searches_clicked": 0 if rank % 7 == 0 else searches // 3, "clicks": searches // 2})
        for p in range(products):
            product_rows.append({"day": day, "product_id": f"p{p}", "clicks": int(rng.poisson(3)),
                                 "add_to_carts": int(rng.poisson(0.5)), "purchases": int(rng.poisson(0.2))})
    for hour in range(first_hour, first_hour + WINDOW_DAYS * 24):
        revenue.append({"hour": hour, "currency": "EUR", "purchases": 300, "revenue": 14_970.0})
    rows = 0
    for model, values in ((SearchBucket, buckets), (QueryDay, queries), (ProductDay, product_rows),
                          (RevenueBucket, revenue)):
        for start in range(0, len(values), UPSERT_ROWS):
            chunk = values[start:start + UPSERT_ROWS]
            keys = [c.name for c in model.__table__.primary_key.columns if c.name != "tenant_id"]  # type: ignore[attr-defined]
            increments = {model: {tuple(row[k] for k in keys): {n: v for n, v in row.items() if n not in keys}
                                  for row in chunk}}
            with db.session() as session:
                AnalyticsRepository(session, tenant).add(increments)  # type: ignore[arg-type]
            rows += len(chunk)
    print(f"a month at scale: {month_searches:,} searches as {rows:,} counter rows "
          f"({len(buckets):,} hourly buckets, {len(queries):,} query-days, {len(product_rows):,} product-days) "
          f"in {time.perf_counter() - started:.1f} s")


def reports(db: Database, tenant: str, end: datetime, repeats: int) -> None:
    service = AnalyticsService(db, retention_days=400)
    start = end - timedelta(days=WINDOW_DAYS)
    calls = {"overview interval=day": lambda: service.overview(tenant, start, end, "day"),
             **{f"queries sort={sort}": (lambda sort=sort: service.queries(tenant, start, end, sort, 50))
                for sort in ("count", "no_results", "no_clicks")},
             **{f"products sort={sort}": (lambda sort=sort: service.products(tenant, start, end, sort, 50))
                for sort in ("clicks", "conversions")}}
    print(f"30-day reports ({repeats} runs each; target < 500 ms):")
    for name, call in calls.items():
        samples = []
        for _ in range(repeats):
            began = time.perf_counter()
            call()
            samples.append((time.perf_counter() - began) * 1000)
        p50, p95 = percentiles(samples)
        print(f"  {name:<26} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--searches", type=int, default=200_000, help="search log rows written through the writer")
    parser.add_argument("--events", type=int, default=20_000, help="events sent in batches of 1,000")
    parser.add_argument("--month-searches", type=int, default=10_000_000, help="searches whose counters are added")
    parser.add_argument("--vocabulary", type=int, default=200_000, help="distinct text queries")
    parser.add_argument("--products", type=int, default=5_000, help="products clicked per day")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL instead of SQLite")
    args = parser.parse_args()
    vocabulary = queries_vocabulary(args.vocabulary)
    end = datetime(2026, 12, 1)
    with database(args.postgres) as db:
        tenant = TenantService(db).create_tenant("bench", "pro").tenant_id
        print(f"engine: {db.engine.dialect.name}")
        if args.searches:
            ingest(db, tenant, args.searches, args.events, end, vocabulary)
        if args.month_searches:
            month_of_counters(db, tenant, args.month_searches, end, vocabulary, args.products)
        reports(db, tenant, end, args.repeats)


if __name__ == "__main__":
    main()
