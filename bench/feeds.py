"""Catalogue feeds: parsing a generated Google Merchant Center XML feed and a Shopify product CSV (items/s, peak
RSS), then a feed synced into a catalogue (the first sync, a re-sync where 1% of the items changed, and an unchanged
feed answered 304), with what each queued for an image fetch and encode.

    .venv/bin/python bench/feeds.py --items 100000 --handles 20000 --sync-items 100000

The issue's figures are summed up at the end (items/s, peak RSS, the 1% re-sync's time and fetches). Each phase
also prints its CPU seconds: on a machine shared with other work, wall time stretches and CPU time does not (the
phases are single-threaded), so CPU time is the figure to compare across runs. Each phase runs in a fresh
process, and each sync's peak RSS is its own (Linux: the peak is reset before it).
The feed is served from disk by a real HTTP server on 127.0.0.1 (conditional GET by Last-Modified). The sync
writes SQLite and queues ingest tasks that do not run here: "queued for fetch" is what a sync sends to be fetched
and encoded. Before the re-sync every product is marked indexed with a vector in the index (Qdrant Edge), so its
metadata-only updates write the index payload as they would in production. Half the changed items change their
price (metadata only), half their image (every other hundredth item).
"""

import argparse
import contextlib
import multiprocessing
import resource
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CDN = "https://cdn.example.com"
CHANGED_SHARE = 0.01


def write_google_xml(path: Path, count: int, changed: frozenset[int] = frozenset()) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0">'
                  "<channel><title>Bench shop</title>\n")
        for n in range(count):
            price = f"{10 + n % 90}.{n % 100:02d} USD"
            image = f"{CDN}/p{n}.jpg"
            if n in changed:
                if n // 100 % 2:
                    image = f"{CDN}/p{n}-v2.jpg"
                else:
                    price = f"{11 + n % 90}.{n % 100:02d} USD"
            out.write(f"<item><g:id>sku-{n}</g:id><title>Product {n} in cotton, regular fit</title>"
                      f"<description><![CDATA[<p>A <b>soft</b> product number {n}.</p>]]></description>"
                      f"<link>https://shop.example.com/p/{n}</link><g:image_link>{image}</g:image_link>"
                      f"<g:additional_image_link>{CDN}/p{n}-b.jpg</g:additional_image_link>"
                      f"<g:price>{price}</g:price><g:availability>in_stock</g:availability><g:brand>Acme</g:brand>"
                      f"<g:item_group_id>g{n // 4}</g:item_group_id><g:product_type>Apparel &gt; Tops &gt; "
                      f"Shirts</g:product_type><g:color>c{n % 12}</g:color><g:size>{'SML'[n % 3]}</g:size></item>\n")
        out.write("</channel></rss>\n")


def write_shopify_csv(path: Path, handles: int) -> None:
    """Each handle: two variants (S with its own image, M without) and two product images."""
    with path.open("w", encoding="utf-8") as out:
        out.write("Handle,Title,Body (HTML),Vendor,Type,Tags,Option1 Name,Option1 Value,Variant SKU,"
                  "Variant Inventory Tracker,Variant Inventory Qty,Variant Price,Variant Compare At Price,Image Src,"
                  "Image Position,Variant Image,Status\n")
        for n in range(handles):
            out.write(f'tee-{n},Tee {n},"<p>Soft tee {n}</p>",Acme,Shirts,"summer, cotton",Size,S,TEE-{n}-S,shopify,'
                      f"3,20.00,25.00,{CDN}/t{n}-1.jpg,1,{CDN}/t{n}-s.jpg,active\n")
            out.write(f"tee-{n},,,,,,,M,TEE-{n}-M,shopify,0,20.00,,{CDN}/t{n}-2.jpg,2,,\n")


def parse_phase(path: str, fmt: str) -> dict[str, Any]:
    from trooply.catalog.feed_formats import feed_items

    started, cpu = time.perf_counter(), time.process_time()
    items = products = 0
    with open(path, encoding="utf-8", newline="") as text:
        for item in feed_items(text, fmt):
            items += 1
            products += item.product is not None
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"items": items, "products": products, "seconds": elapsed, "cpu_s": cpu, "items_per_s": items / elapsed,
            "items_per_cpu_s": items / cpu, "peak_rss_mib": _peak_rss_mib()}


def sync_phase(base_url: str, data_dir: str) -> dict[str, Any]:
    """The first sync, a re-sync of the 1%-changed feed, and an unchanged feed: each report, timed."""
    import numpy as np

    from bench._common import bench_settings
    from trooply.catalog.models import INDEXED
    from trooply.container import Container
    from trooply.db import utcnow
    from trooply.feeds.schemas import FeedIn, FeedPatch
    from trooply.index.base import IndexPoint
    from trooply.models import ProductRecord

    # The index stays one shared, exhaustive store: no promotion or graph build runs beside the syncs timed here.
    settings = bench_settings("trooply-test-tiny", data_dir=Path(data_dir), feed_max_bytes=4 * 1024**3,
                              index_promotion_threshold=10**9, index_optimize_threshold=10**9)
    container = Container(settings)
    container.prepare()
    tenant = container.tenants.create_tenant("bench", "pro").tenant_id
    feeds = container.feeds
    results: dict[str, Any] = {"baseline_rss_mib": _peak_rss_mib()}  # the service's imports (torch among them)

    def sync(label: str, feed_id: str) -> None:
        _reset_peak()
        before = _rss_mib()
        started, cpu = time.perf_counter(), time.process_time()
        report = feeds.start_sync(tenant, feed_id)  # queued on the embedded queue, which is not started here
        feeds.run_sync(tenant, report.sync_id)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        out = feeds.get(tenant, feed_id).syncs[0]
        queued = sum(container.catalog.job(tenant, job)["total"] for job in out.jobs)
        results[label] = {"seconds": elapsed, "cpu_s": cpu, "status": out.status, "not_modified": out.not_modified,
                          "counts": out.counts.model_dump(), "queued_for_fetch": queued, "bytes": out.bytes,
                          "rss_before_mib": before, "peak_rss_mib": _peak_rss_mib()}

    _reset_peak()
    before, cpu = _rss_mib(), time.process_time()
    feed = feeds.create(tenant, FeedIn(url=f"{base_url}/v1.xml", format="google_xml", schedule="manual"))
    feeds.run_sync(tenant, feed.syncs[0].sync_id)  # the creation's sync, run here
    first = feeds.get(tenant, feed.id).syncs[0]
    results["first"] = {"status": first.status, "counts": first.counts.model_dump(), "seconds": first.duration_s,
                        "cpu_s": time.process_time() - cpu,
                        "queued_for_fetch": sum(container.catalog.job(tenant, job)["total"] for job in first.jobs),
                        "bytes": first.bytes, "rss_before_mib": before, "peak_rss_mib": _peak_rss_mib()}
    # As if ingest had run: every product indexed, with a vector.
    index = container.index
    rng = np.random.default_rng(0)
    with container.db.session() as session:
        ids = [row.id for row in session.query(ProductRecord).filter_by(tenant_id=tenant)]
        session.query(ProductRecord).filter_by(tenant_id=tenant).update({"status": INDEXED, "indexed_at": utcnow()})
    for start in range(0, len(ids), 2000):
        chunk = ids[start:start + 2000]
        vectors = rng.standard_normal((len(chunk), index.space.size)).astype(np.float32)
        index.upsert(tenant, [IndexPoint(pid, v / np.linalg.norm(v), {"product_id": pid})
                              for pid, v in zip(chunk, vectors, strict=True)])
    feeds.patch(tenant, feed.id, FeedPatch(url=f"{base_url}/v2.xml"))
    sync("resync_1pct", feed.id)
    sync("unchanged", feed.id)
    container.stop()
    return results


def _peak_rss_mib() -> float:
    """The process's peak RSS since it started, or since the last `_reset_peak` (Linux: VmHWM)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    """Linux: the peak RSS starts again from the current RSS, so a phase's peak is its own."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _serve(directory: Path) -> ThreadingHTTPServer:
    handler = partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="items of the Google XML feed parsed")
    parser.add_argument("--handles", type=int, default=20_000, help="handles of the Shopify CSV (two variants each)")
    parser.add_argument("--sync-items", type=int, default=100_000, help="items of the feed synced")
    args = parser.parse_args()
    began = time.perf_counter()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # lines in order beside the children
    work = Path(tempfile.mkdtemp(prefix="trooply-bench-feeds-"))
    xml, shopify = work / "google.xml", work / "shopify.csv"
    write_google_xml(xml, args.items)
    write_shopify_csv(shopify, args.handles)
    changed = frozenset(range(0, args.sync_items, int(1 / CHANGED_SHARE)))
    write_google_xml(work / "v1.xml", args.sync_items)
    write_google_xml(work / "v2.xml", args.sync_items, changed)
    fresh = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1)
    parsed: dict[str, dict[str, Any]] = {}
    with fresh:
        for label, path, fmt in (("Google XML", xml, "google_xml"), ("Shopify CSV", shopify, "shopify_csv")):
            got = parsed[label] = fresh.submit(parse_phase, str(path), fmt).result()
            print(f"parse {label:<11} {path.stat().st_size / 2**20:7.1f} MiB  {got['items']:>7,} items "
                  f"({got['products']:,} products)  {got['seconds']:6.1f} s (CPU {got['cpu_s']:.1f} s)  "
                  f"{got['items_per_s']:8,.0f} items/s ({got['items_per_cpu_s']:,.0f} per CPU-s)  "
                  f"peak RSS {got['peak_rss_mib']:.0f} MiB")
        server = _serve(work)
        try:
            synced = fresh.submit(sync_phase, f"http://127.0.0.1:{server.server_address[1]}",
                                  str(work / "data")).result()
        finally:
            server.shutdown()
    print(f"sync of {args.sync_items:,} items ({len(changed):,} changed in the re-sync: "
          f"{len(changed) // 2:,} prices, {len(changed) - len(changed) // 2:,} images)")
    baseline = synced.pop("baseline_rss_mib")
    print(f"  (RSS once the service is imported, torch among it: {baseline:.0f} MiB; before the re-sync the index "
          "holds every product's vector)")
    for label, got in synced.items():
        counts = {name: n for name, n in got["counts"].items() if n}
        seconds = got["seconds"] or 0.0
        modified = " (not modified)" if got.get("not_modified") else ""
        print(f"  {label:<12} {seconds:6.1f} s (CPU {got['cpu_s']:5.1f} s)  {got['status']}{modified}"
              f"  queued for fetch {got['queued_for_fetch']:>7,}  RSS {got['rss_before_mib']:.0f} MiB, peak "
              f"{got['peak_rss_mib']:.0f} MiB (+{got['peak_rss_mib'] - got['rss_before_mib']:.0f})  {counts}")

    _summary(args, parsed, synced, len(changed))
    print(f"bench wall time {time.perf_counter() - began:.0f} s")


def _summary(args: argparse.Namespace, parsed: dict[str, dict[str, Any]], synced: dict[str, Any],
             changed: int) -> None:
    """The figures the issue asks for, in one place."""
    xml, shop, resync = parsed["Google XML"], parsed["Shopify CSV"], synced["resync_1pct"]
    images_changed = changed - changed // 2
    print("issue 25 figures:")
    print(f"  Google XML, {args.items:,} items: {xml['items_per_s']:,.0f} items/s ({xml['items_per_cpu_s']:,.0f} per "
          f"CPU-s), peak RSS {xml['peak_rss_mib']:.0f} MiB")
    print(f"  Shopify CSV, {args.handles:,} handles ({shop['items']:,} variants): {shop['items_per_s']:,.0f} items/s "
          f"({shop['items_per_cpu_s']:,.0f} per CPU-s), peak RSS {shop['peak_rss_mib']:.0f} MiB")
    fetched = resync["queued_for_fetch"]
    print(f"  re-sync of {args.sync_items:,} items, 1% changed: {resync['seconds']:.1f} s "
          f"(CPU {resync['cpu_s']:.1f} s), fetches {fetched:,} for {images_changed:,} changed images and "
          f"{changed // 2:,} changed prices: "
          f"{'only the changed images' if fetched == images_changed else 'MORE THAN THE CHANGED IMAGES'}")


if __name__ == "__main__":
    main()
