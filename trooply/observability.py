"""Prometheus metrics and JSON logs that carry the request id.

Metrics live in the process's default registry; `GET /metrics` exposes the API process's. Celery workers
are separate processes: their ingest and encoder metrics are theirs (scrape them with the Prometheus
multiprocess setup or a pushgateway — not wired here).
"""

import contextvars
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_SECONDS = Histogram("trooply_request_seconds", "HTTP request latency", ["method", "route", "status"],
                            buckets=_FAST)
SEARCH_SECONDS = Histogram("trooply_search_seconds", "Search latency inside the service, per mode", ["mode"],
                           buckets=_FAST)
INGEST_OUTCOMES = Counter("trooply_ingest_outcomes_total", "Ingest item outcomes by error code",
                          ["outcome", "code"])
QUEUE_DEPTH = Gauge("trooply_queue_depth", "Ingest batches waiting in the queue")
ENCODER_BATCH_SECONDS = Histogram("trooply_encoder_batch_seconds", "CLIP forward pass per batch", ["kind"],
                                  buckets=_FAST)
INDEX_QUERY_SECONDS = Histogram("trooply_index_query_seconds", "Vector index query latency", buckets=_FAST)
RUNTIME_BATCH_SIZE = Histogram("trooply_runtime_batch_size", "Items per forward pass of the model runtime",
                               ["model", "kind"], buckets=(1, 2, 4, 8, 16, 32, 64, 128))
RUNTIME_QUEUE_DEPTH = Gauge("trooply_runtime_queue_depth", "Items waiting for a forward pass", ["model", "kind"])
RUNTIME_SHED = Counter("trooply_runtime_shed_total", "Queries refused as overloaded (503), per model", ["model"])
REQUESTS_REFUSED = Counter("trooply_requests_refused_total", "Requests refused by a limit (ip, tenant, body)",
                           ["limit"])


@contextmanager
def timed(histogram: Histogram, **labels: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        (histogram.labels(**labels) if labels else histogram).observe(time.perf_counter() - started)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the request being served, if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key in ("method", "path", "status", "duration_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(log_format: str, level: str = "INFO") -> None:
    """`auto` writes text to a terminal (a person reads it) and JSON elsewhere (a collector reads it)."""
    handler = logging.StreamHandler()
    if log_format == "auto":
        log_format = "text" if handler.stream.isatty() else "json"
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
