"""`trooply import FILE`: a CSV or JSONL file sent in batches to a catalogue — this process's (the data
directory and database of the settings) or a remote server's (`--url`, `--key`) — with a progress bar that
follows the ingest jobs to their end, and a summary: indexed, failed by code, rejected rows by line."""

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from trooply.catalog.imports import (
    BatchOutcome,
    ImportReport,
    catalog_sender,
    job_totals,
    outcome,
    read_rows,
    submit_rows,
)
from trooply.catalog.schemas import MAX_BATCH, ProductIn
from trooply.config import Settings
from trooply.errors import InvalidRequest, QuotaExceeded, TrooplyError

POLL_SECONDS = 0.5
# Polled at most this often while batches are still being sent, so a remote server sees few job reads.
POLL_WHILE_SENDING_SECONDS = 1.0
REMOTE_ATTEMPTS = 8


class ImportTarget(Protocol):
    def send(self, products: list[ProductIn]) -> BatchOutcome: ...

    def job(self, job_id: str) -> dict[str, Any]: ...

    def close(self) -> None: ...


class LocalCatalog:
    """This installation's catalogue. Embedded (no Redis), this process also ingests, as `trooply serve` would:
    it loads the model and opens the index, so it cannot run beside a `serve` on the same data directory."""

    def __init__(self, settings: Settings, tenant_id: str, skip_unchanged: bool, fmt: str | None = None) -> None:
        """`fmt`: the file's format (a feed's items keep the first images their plan allows)."""
        from trooply.container import Container

        self.container = Container(settings)
        self.tenant_id = tenant_id
        try:
            if self.container.embedded_queue:
                self.container.start()
            else:  # Celery workers ingest: this process only writes SQL and queues
                self.container.db.migrate()
            self.container.tenants.get_plan(tenant_id)  # tenant_not_found before anything is read
        except TrooplyError as error:
            self.container.stop()
            if error.code == "data_dir_locked":
                error.message += "; import through the running server instead: --url URL --key SECRET_KEY"
            raise
        self.send = catalog_sender(self.container.catalog, tenant_id, skip_unchanged, fmt)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.container.catalog.job(self.tenant_id, job_id)

    def close(self) -> None:
        self.container.stop()


class RemoteCatalog:
    """A Trooply server's public API with the tenant's secret key; waits out 429 and 503 (Retry-After)."""

    def __init__(self, url: str, key: str, skip_unchanged: bool, timeout: float = 120.0) -> None:
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout,
                                   headers={"Authorization": f"Bearer {key}", "User-Agent": "trooply-import"})
        self.skip_unchanged = skip_unchanged

    def send(self, products: list[ProductIn]) -> BatchOutcome:
        body = {"products": [product.model_dump(mode="json", exclude_none=True) for product in products]}
        answer = self.call("POST", "/v1/products", json=body,
                            params={"skip_unchanged": "true" if self.skip_unchanged else "false"})
        return answer["job_id"], [outcome(p["status"], p.get("error")) for p in answer["products"]]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/jobs/{job_id}")

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One call of the public API: its JSON answer, or its error envelope raised (TrooplyError)."""
        for attempt in range(REMOTE_ATTEMPTS):
            try:
                response = self.client.request(method, path, **kwargs)
            except httpx.HTTPError as failure:
                raise TrooplyError(f"{self.client.base_url}{path}: {failure}", code="server_unreachable") from None
            if response.status_code in (429, 503) and attempt < REMOTE_ATTEMPTS - 1:
                time.sleep(_retry_after(response.headers.get("retry-after")))
                continue
            break
        if response.is_success:
            return response.json()
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = {"code": "server_error", "message": f"{response.status_code} {response.reason_phrase}"}
        kind = QuotaExceeded if error.get("code") == "quota_exceeded" else TrooplyError
        raise kind(error.get("message", ""), code=error.get("code"), status=response.status_code,
                   details=error.get("details"))


def _retry_after(header: str | None) -> float:
    """The server's Retry-After in seconds (1 when absent or a date), at most 30."""
    try:
        return min(30.0, max(0.1, float(header or 1)))
    except ValueError:
        return 1.0


@dataclass
class JobFollower:
    """The jobs' latest states. Jobs run roughly in the order they were queued, so each poll reads the unfinished
    ones in order and stops at the first still running: a few reads per poll, however many jobs there are."""

    read: Callable[[str], dict[str, Any]]
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def poll(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            if self.jobs.get(job_id, {}).get("status") == "completed":
                continue
            self.jobs[job_id] = self.read(job_id)
            if self.jobs[job_id]["status"] != "completed":
                return

    def done(self, job_ids: list[str]) -> bool:
        return all(self.jobs.get(job_id, {}).get("status") == "completed" for job_id in job_ids)

    def processed(self) -> tuple[int, int]:
        counts = job_totals(self.jobs.values())["counts"]
        return counts.get("indexed", 0), counts.get("failed", 0)


def run_import(path: Path, fmt: str, target: ImportTarget, console: Console,
               batch_size: int = MAX_BATCH) -> dict[str, Any]:
    """Sends the file and follows its jobs to their end; answers the summary (see `summary`)."""
    size = path.stat().st_size
    follower = JobFollower(target.job)
    columns = (TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[note]}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress, _logs_above(console):
        reading = progress.add_task("Reading", total=size, note="bytes")
        indexing = progress.add_task("Indexing", total=0, note="")
        polled = [0.0]

        def show(report: ImportReport) -> None:
            if time.monotonic() - polled[0] >= POLL_WHILE_SENDING_SECONDS:
                follower.poll(report.jobs)
                polled[0] = time.monotonic()
            indexed, failed = follower.processed()
            progress.update(indexing, total=report.accepted, completed=indexed + failed,
                            note=_note(report, failed))

        lines = _file_lines(path, lambda n: progress.advance(reading, n))
        report = submit_rows(read_rows(lines, fmt), target.send, show, batch_size)
        progress.update(reading, completed=size)
        while not follower.done(report.jobs):
            follower.poll(report.jobs)
            polled[0] = time.monotonic()
            show(report)
            if not follower.done(report.jobs):
                time.sleep(POLL_SECONDS)
        show(report)
    return summary(path, report, follower.jobs)


def summary(path: Path, report: ImportReport, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    totals = job_totals(jobs.values())
    failed = [{"product_id": error["product_id"], "code": error["code"], "message": error["message"]}
              for job in jobs.values() for error in job.get("errors", [])]
    return {"file": str(path), "rows": report.rows, "accepted": report.accepted, "unchanged": report.unchanged,
            "indexed": totals["counts"].get("indexed", 0), "failed": totals["counts"].get("failed", 0),
            "failed_by_code": totals["failed_by_code"], "failed_products": failed,
            "rejected": [vars(row) for row in report.rejected], "jobs": report.jobs}


def print_summary(result: dict[str, Any], console: Console, shown: int = 20) -> None:
    failed_codes = ", ".join(f"{code} {n}" for code, n in sorted(result["failed_by_code"].items(), key=lambda c: -c[1]))
    console.print(f"[bold]{result['file']}[/]: {result['rows']} rows")
    console.print(f"  indexed    {result['indexed']:>8}")
    console.print(f"  failed     {result['failed']:>8}" + (f"   {failed_codes}" if failed_codes else ""))
    console.print(f"  unchanged  {result['unchanged']:>8}   already imported as they are: skipped")
    console.print(f"  rejected   {len(result['rejected']):>8}" + ("   rows with errors, below" if result["rejected"]
                                                                   else ""))
    for row in result["rejected"][:shown]:
        named = f" ({row['product_id']})" if row["product_id"] else ""
        console.print(f"  line {row['line']}{named}: [red]{row['code']}[/] {row['message']}", highlight=False)
    if len(result["rejected"]) > shown:
        console.print(f"  … and {len(result['rejected']) - shown} more rejected rows (--json lists them all)")
    for product in result["failed_products"][:shown]:
        console.print(f"  failed {product['product_id']}: [red]{product['code']}[/] {product['message']}",
                      highlight=False)
    if len(result["failed_products"]) > shown:
        console.print(f"  … and {len(result['failed_products']) - shown} more failed products "
                      "(GET /v1/products?status=failed, or the portal, lists them; POST /v1/products/retry retries)")


def _note(report: ImportReport, failed: int) -> str:
    parts = [f"{failed} failed" if failed else "", f"{report.unchanged} unchanged" if report.unchanged else "",
             f"{len(report.rejected)} rejected" if report.rejected else ""]
    return " · ".join(part for part in parts if part)


def _file_lines(path: Path, advance: Callable[[int], None]) -> Iterator[str]:
    """The file's text lines, reporting the bytes read; newlines kept, so the CSV reader sees quoted ones."""
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            advance(len(raw))
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequest(f"{path}: line {number} is not UTF-8 text", code="invalid_import_file") from None
            yield text.removeprefix("\ufeff") if number == 1 else text


@contextmanager
def _logs_above(console: Console) -> Iterator[None]:
    """Log records printed above the progress bars rather than through them."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [RichHandler(console=console, show_path=False)]
    try:
        yield
    finally:
        root.handlers[:] = saved
