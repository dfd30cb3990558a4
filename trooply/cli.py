"""The `trooply` command: serve, worker, migrate, tenants, keys, import, models, reindex, duplicates."""

import argparse
import json
import os
import sys
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

from trooply.config import Settings
from trooply.errors import TrooplyError
from trooply.observability import configure_logging
from trooply.tasks.queue import WORKER_CHOICES
from trooply.tools.benchmarks import LAYOUTS


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = Settings()
    if args.run in (_serve, _worker, _beat):
        configure_logging(settings.log_format, settings.log_level)
    else:  # a one-off command says what it did; its INFO lines (Alembic's) only with -v
        configure_logging("text", settings.log_level if args.verbose else "WARNING")
    try:
        return args.run(args, settings) or 0
    except TrooplyError as error:
        print(f"error [{error.code}]: {error.message}", file=sys.stderr)
        return 1


TENANT_HELP = "the tenant's id (ten_…), as `tenants create` printed it and `tenants list` lists it"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trooply", description="Self-hosted visual search for ecommerce")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log at TROOPLY_LOG_LEVEL in one-off commands too (they log warnings only)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the API (migrates first; embedded workers without Redis)")
    serve.add_argument("--host", help="the address to listen on (default: TROOPLY_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="the port to listen on (default: TROOPLY_PORT, 8000)")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run a Celery worker for ingest and background tasks "
                                 "(needs TROOPLY_REDIS_URL)")
    worker.add_argument("--concurrency", type=int, default=2, help="tasks this worker runs at once (default: 2)")
    worker.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"],
                        help="Celery's execution pool (default: prefork)")
    worker.add_argument("--queues", default="all", choices=WORKER_CHOICES,
                        help="ingest batches, background tasks (scans, tenant purges, model migrations), or both "
                        "(default); run one worker of each so that a migration never holds up ingest")
    worker.set_defaults(run=_worker)

    commands.add_parser("beat", help="run Celery beat: the periodic popularity refresh (needs TROOPLY_REDIS_URL)"
                        ).set_defaults(run=_beat)

    commands.add_parser("migrate", help="apply the SQL schema migrations; give the products of indexes "
                        "built before the words leg their words").set_defaults(run=_migrate)

    tenants = commands.add_parser("tenants", help="manage tenants").add_subparsers(required=True, metavar="ACTION")
    create = tenants.add_parser("create", help="create a tenant and print its keys once")
    create.add_argument("name", help="the shop's name, as the portal and the admin API show it")
    create.add_argument("--plan", default="free", help="a plan of TROOPLY_PLANS (default: free)")
    _credential_formats(create)
    create.set_defaults(run=_create_tenant)
    listing = tenants.add_parser("list", help="tenants with their plan and product count, one JSON line each")
    listing.add_argument("--limit", type=int, default=100, help="tenants per page (1 to 500)")
    listing.add_argument("--after", help="the last tenant id of the previous page")
    listing.set_defaults(run=_list_tenants)
    show = tenants.add_parser("show", help="a tenant: plan and its limits, product count, active key prefixes")
    show.add_argument("tenant_id", help=TENANT_HELP)
    show.set_defaults(run=_show_tenant)
    update = tenants.add_parser("update", help="change a tenant's plan (at once, quotas included) or name")
    update.add_argument("tenant_id", help=TENANT_HELP)
    update.add_argument("--plan", help="a plan of TROOPLY_PLANS")
    update.add_argument("--name", help="the shop's new name")
    update.add_argument("--allowed-origin", action="append", dest="allowed_origins", metavar="ORIGIN",
                        help="a browser origin the publishable key is accepted from (repeat; replaces the list)")
    update.add_argument("--no-allowed-origins", action="store_const", const=[], dest="allowed_origins",
                        help="no browser may use the publishable key")
    update.add_argument("--language", help="the language of the shop's product text (english, german, french, …): "
                        "its words are re-tokenised in the background by the running server or workers")
    update.set_defaults(run=_update_tenant)
    remove = tenants.add_parser("delete", help="revoke a tenant's keys now and purge all its data")
    remove.add_argument("tenant_id", help=TENANT_HELP)
    remove.set_defaults(run=_delete_tenant)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(required=True, metavar="ACTION")
    rotate = keys.add_parser("rotate", help="revoke a tenant's keys and print new ones once")
    rotate.add_argument("tenant_id", help=TENANT_HELP)
    _credential_formats(rotate)
    rotate.set_defaults(run=_rotate_keys)

    evaluate = commands.add_parser("eval", help="Recall@1/@10 and nDCG@10, raw cosine vs the full pipeline, on your "
                                   "catalogue (--catalog, --queries) or a standard test set (--dataset)")
    evaluate.add_argument("--catalog", type=Path, help="JSONL, one product per line (as POSTed)")
    evaluate.add_argument("--queries", type=Path,
                          help='JSONL: {"query" | "image_url", "relevant": [ids], "profile"?, "filters"?}')
    evaluate.add_argument("--dataset", type=Path, help="Stanford Online Products (Ebay_test.txt), DeepFashion In-shop "
                          "(list_eval_partition.txt), or a class_name/image.jpg folder tree")
    evaluate.add_argument("--layout", choices=LAYOUTS, default="auto", help="the dataset's layout (auto: detected)")
    evaluate.add_argument("--profile", help="score every dataset query with this profile (default: zero-shot)")
    evaluate.add_argument("--max-queries", type=int, help="a seeded sample of the dataset's queries")
    evaluate.add_argument("--concurrency", type=int, default=4, help="queries in flight (the model batches them)")
    evaluate.add_argument("--model", help="TROOPLY_CLIP_MODEL for this run")
    evaluate.add_argument("--pretrained", help="TROOPLY_CLIP_PRETRAINED for this run")
    evaluate.add_argument("--runtime", choices=("auto", "onnx", "onnx-int8"),
                          help="run twice, with PyTorch and with this CLIP runtime, and print the two side by side")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.set_defaults(run=_evaluate)

    bulk = commands.add_parser("import", help="import products from a .csv, .jsonl, Google Merchant Center (.xml, "
                               ".tsv) or Shopify (.csv) file (resumable: a re-run "
                               "skips products already stored as they are)")
    bulk.add_argument("file", type=Path, help="a .csv or .jsonl file, one product a row (README: Bulk import)")
    bulk.add_argument("--tenant", help="the tenant to import into (this installation's database)")
    bulk.add_argument("--url", help="import into a running server instead, e.g. http://127.0.0.1:8000")
    bulk.add_argument("--key", default=os.environ.get("TROOPLY_API_KEY"),
                      help="the tenant's secret key for --url (default: $TROOPLY_API_KEY)")
    bulk.add_argument("--format", choices=("csv", "jsonl", "google_xml", "google_tsv", "shopify_csv", "auto"),
                      help="the file's format (default: from its name; .csv, .tsv and .txt are read to tell our CSV, "
                      "a Shopify export and a Merchant Center TSV apart)")
    bulk.add_argument("--force", action="store_true", help="send every row again, unchanged products included")
    bulk.add_argument("--batch-size", type=int, default=1000, help="products per request and job (1 to 1,000)")
    bulk.add_argument("--json", action="store_true", help="print the summary as JSON")
    bulk.set_defaults(run=_import)

    _feeds_parser(commands)

    models = commands.add_parser("models", help="the active CLIP model, and changing it without downtime"
                                 ).add_subparsers(required=True, metavar="ACTION")
    models.add_parser("status", help="the active model and a migration's progress (JSON)").set_defaults(
        run=_models, action="status")
    migrate_model = models.add_parser("migrate", help="re-encode every product with MODEL in the background; "
                                      "searches switch when every tenant is done (or on `cutover`)")
    migrate_model.add_argument("model", help="as TROOPLY_CLIP_MODEL")
    migrate_model.add_argument("--pretrained", default="openai", help="as TROOPLY_CLIP_PRETRAINED (default: openai)")
    migrate_model.set_defaults(run=_models, action="migrate")
    for action, description in (("cutover", "make the migrated model active (TROOPLY_MODEL_CUTOVER=manual)"),
                                ("abort", "stop a migration before its cutover and drop what it re-encoded"),
                                ("retry", "try the products a migration failed on again now"),
                                ("rollback", "back to the model the last cutover replaced"),
                                ("cleanup", "drop the previous model's vectors (no rollback after this)")):
        models.add_parser(action, help=description).set_defaults(run=_models, action=action)

    reindex = commands.add_parser("reindex", help="drop a tenant's vectors and encode every product again")
    reindex.add_argument("tenant_id", help=TENANT_HELP)
    reindex.set_defaults(run=_reindex)

    duplicates = commands.add_parser("duplicates", help="groups of near-duplicate products, one JSON line each")
    duplicates.add_argument("tenant_id", help=TENANT_HELP)
    duplicates.add_argument("--threshold", type=float, default=0.97, help="cosine at which two products are "
                            "duplicates (0.5 to 1; default 0.97)")
    duplicates.add_argument("--out", default="-", help="a .jsonl file (default: standard output)")
    duplicates.set_defaults(run=_duplicates)
    return parser


def _feeds_parser(commands) -> None:
    feeds = commands.add_parser("feeds", help="a running server's catalogue feeds (Merchant Center, Shopify, CSV, "
                                "JSONL) kept in sync: list, add, sync (README: Catalogue feeds)"
                                ).add_subparsers(required=True, metavar="ACTION")
    listing = feeds.add_parser("list", help="the feeds with their last sync, one JSON line each")
    add = feeds.add_parser("add", help="register a feed (its first sync starts at once); prints it as JSON")
    add.add_argument("feed_url", help="where the feed is published (http or https)")
    add.add_argument("--format", default="auto",
                     choices=("auto", "google_xml", "google_tsv", "shopify_csv", "csv", "jsonl"),
                     help="the feed's format (default: auto, read from its first bytes)")
    add.add_argument("--schedule", default="daily", choices=("manual", "hourly", "daily"),
                     help="how often the server syncs it (default: daily; manual: only on `feeds sync`)")
    add.add_argument("--delete-missing", action="store_true", help="delete the products that leave the feed")
    sync = feeds.add_parser("sync", help="sync a feed now (or answer its running sync); prints the sync as JSON")
    sync.add_argument("feed_id", help="the feed's id (feed_…), as `feeds list` lists it")
    sync.add_argument("--wait", action="store_true", help="follow the sync to its end; exit 1 if it failed")
    for action, command in (("list", listing), ("add", add), ("sync", sync)):
        command.add_argument("--url", default=os.environ.get("TROOPLY_URL", "http://127.0.0.1:8000"),
                             help="the server (default: $TROOPLY_URL, else http://127.0.0.1:8000)")
        command.add_argument("--key", default=os.environ.get("TROOPLY_API_KEY"),
                             help="the tenant's secret key (default: $TROOPLY_API_KEY)")
        command.set_defaults(run=_feeds, action=action)


def _credential_formats(parser: argparse.ArgumentParser) -> None:
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the tenant id and keys as one JSON object")
    shown.add_argument("--env", action="store_true",
                       help="print TENANT_ID=, SK= and PK= lines for a shell: "
                       "eval \"$(trooply tenants create NAME --env)\"")


def _serve(args, settings: Settings) -> None:
    import uvicorn

    from trooply.api.app import create_app
    from trooply.api.serving import OffLoopCloseH11

    app = create_app(settings)
    app.state.container.prepare()  # the schema, and which model is active (recorded in SQL)
    # The model loads here, not in uvicorn's start-up, so that weights it cannot load are main()'s one-line
    # error instead of uvicorn's traceback; the start-up then finds it loaded.
    _ = app.state.container.encoder
    # Our middleware writes the access log (JSON, with the request id): uvicorn's own is off.
    # proxy_headers off: the client address is ours to derive, from trusted proxies only (api/limits.py).
    uvicorn.run(app, host=args.host or settings.host, port=args.port or settings.port,
                access_log=False, log_config=None, proxy_headers=False, http=OffLoopCloseH11)


def _worker(args, settings: Settings) -> int:
    if not settings.redis_url:
        print("error: `trooply worker` needs TROOPLY_REDIS_URL (without it, `trooply serve` runs "
              "its own in-process workers)", file=sys.stderr)
        return 2
    import workers.tasks  # noqa: F401  (declares every task, so that every background queue is known)
    from trooply.tasks.queue import worker_queues
    from workers.celery_app import app

    app.worker_main(["worker", "--loglevel=INFO", f"--concurrency={args.concurrency}", f"--pool={args.pool}",
                     f"--queues={','.join(worker_queues(args.queues))}"])
    return 0


def _beat(_args, settings: Settings) -> int:
    if not settings.redis_url:
        print("error: `trooply beat` needs TROOPLY_REDIS_URL (`trooply serve` refreshes popularity itself)",
              file=sys.stderr)
        return 2
    from workers.celery_app import app

    app.start(["beat", "--loglevel=INFO"])
    return 0


def _migrate(_args, settings: Settings) -> None:
    from trooply.container import Container
    from trooply.errors import ServiceUnavailable

    container = Container(settings)
    try:
        container.prepare()
        print("database is at the latest schema")
        try:
            container.fill_words()
            print("every indexed product has its words")
        except ServiceUnavailable as error:  # embedded, beside a running `trooply serve`: it fills them at open
            print(f"index not reached ({error.message}); products get their words when the index opens")
        _begin_colour_refresh(container.db, settings)
    finally:
        container.stop()


def _begin_colour_refresh(db, settings: Settings) -> None:
    """Stored colours older than the colour signal are recomputed in the background: embedded by `trooply serve`
    (which resumes it at start); with Celery by the workers, if Redis answers now (a migrate job may run before
    it), else once POST /admin/v1/colour-refresh sends it."""
    from trooply.colour_refresh.service import ColourRefreshService
    from trooply.tasks.queue import CeleryDispatcher

    dispatcher = CeleryDispatcher(settings.redis_url) if settings.redis_url else None
    try:
        refresh = ColourRefreshService(db, None).start(send=False)
        where = "the next `trooply serve`"
        if dispatcher is not None and refresh.done < refresh.total:
            where = "POST /admin/v1/colour-refresh (Redis did not answer)"
            with suppress(Exception):
                dispatcher.ping()
                ColourRefreshService(db, dispatcher).resume_unfinished()
                where = "the Celery workers"
    finally:
        if dispatcher is not None:
            dispatcher.stop()
    if refresh.started:
        print(f"colour refresh of {len(refresh.started)} tenant(s), {refresh.total} products, begun for {where}")


@contextmanager
def _tenant_admin(settings: Settings):
    """The admin API's service, without the index (a running embedded server holds it) or a task pool: a
    purge goes to the Celery workers, or embedded, to the running `trooply serve`'s purge sweep (or its next
    start)."""
    from trooply.admin.service import TenantAdminService
    from trooply.db import Database
    from trooply.tasks.queue import CeleryDispatcher
    from trooply.tenancy.service import TenantService

    db = Database(settings.sql_url)
    dispatcher = CeleryDispatcher(settings.redis_url) if settings.redis_url else None
    try:
        db.migrate()
        yield TenantAdminService(db, TenantService(db, plans=settings.plans), settings, dispatcher,
                                 tiers=_tiers_on_disk(settings, db))
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        db.close()


def _tiers_on_disk(settings: Settings, db):
    """Embedded, storage tiers are read from the data directory as the admin API shows them; on the Qdrant
    server they stay unknown here (null)."""
    if settings.qdrant.url:
        return None
    from trooply.index.edge import tier_on_disk
    from trooply.model_migration.service import ModelMigrationService

    space = ModelMigrationService(db, settings, None).read().active.space.name
    return lambda tenant_id: tier_on_disk(settings.data_dir, space, tenant_id)


def _models(args, settings: Settings) -> None:
    """Embedded, the running `trooply serve` picks the work up within seconds; with Celery, the workers do."""
    from trooply.db import Database
    from trooply.model_migration.service import ModelMigrationService
    from trooply.tasks.queue import CeleryDispatcher

    db = Database(settings.sql_url)
    dispatcher = CeleryDispatcher(settings.redis_url) if settings.redis_url else None
    try:
        db.migrate()
        service = ModelMigrationService(db, settings, dispatcher)
        service.ensure_state()
        calls = {"status": service.status, "cutover": service.cutover, "rollback": service.rollback,
                 "abort": service.abort, "retry": service.retry_failures,
                 "cleanup": service.cleanup, "migrate": lambda: service.migrate(args.model, args.pretrained)}
        print(calls[args.action]().model_dump_json(indent=2))
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        db.close()


def _create_tenant(args, settings: Settings) -> None:
    with _tenant_admin(settings) as admin:
        _print_credentials(admin.create(args.name, args.plan), args)


def _list_tenants(args, settings: Settings) -> int:
    if not 1 <= args.limit <= 500:
        print("error: --limit must lie between 1 and 500", file=sys.stderr)
        return 2
    with _tenant_admin(settings) as admin:
        page = admin.page(args.limit, args.after)
    for tenant in page.tenants:
        print(tenant.model_dump_json())
    if page.next_after:
        print(f"more: --after {page.next_after}", file=sys.stderr)
    return 0


def _show_tenant(args, settings: Settings) -> None:
    with _tenant_admin(settings) as admin:
        print(admin.get(args.tenant_id).model_dump_json(indent=2))


def _update_tenant(args, settings: Settings) -> int:
    from pydantic import ValidationError

    from trooply.admin.schemas import TenantPatch

    try:
        patch = TenantPatch(name=args.name, plan=args.plan, allowed_origins=args.allowed_origins,
                            language=args.language)
    except ValidationError as error:
        print(f"error: {error.errors()[0]['msg']}", file=sys.stderr)
        return 2
    with _tenant_admin(settings) as admin:
        print(admin.update(args.tenant_id, patch).model_dump_json(indent=2))
    return 0


def _delete_tenant(args, settings: Settings) -> None:
    from trooply.container import PURGE_SWEEP_SECONDS

    with _tenant_admin(settings) as admin:
        admin.delete(args.tenant_id)
    where = ("on the Celery workers" if settings.redis_url
             else f"by the running `trooply serve` within {PURGE_SWEEP_SECONDS:g} s (or at its next start)")
    print(f"tenant {args.tenant_id} deleted: its keys are revoked (running servers refuse them within "
          f"{settings.limits.key_cache_seconds:g} s); its data is purged {where}")


def _rotate_keys(args, settings: Settings) -> None:
    with _tenant_admin(settings) as admin:
        _print_credentials(admin.rotate_keys(args.tenant_id), args)
    # Running servers are other processes: each trusts a key it already checked for its own cache time.
    print(f"The old keys are revoked now; running servers refuse them within {settings.limits.key_cache_seconds:g} s "
          "(TROOPLY_KEY_CACHE_SECONDS).", file=sys.stderr if args.json or args.env else sys.stdout)


def _print_credentials(credentials, args) -> None:
    if args.json:
        print(json.dumps({name: getattr(credentials, name)
                          for name in ("tenant_id", "secret_key", "publishable_key")}))
        return
    if args.env:  # ids and keys are [A-Za-z0-9_-] only: safe for eval unquoted
        print(f"TENANT_ID={credentials.tenant_id}\nSK={credentials.secret_key}\nPK={credentials.publishable_key}")
        print("# the keys are shown once: they are kept only as hashes", file=sys.stderr)
        return
    print(f"tenant_id:       {credentials.tenant_id}\nsecret_key:      {credentials.secret_key}\n"
          f"publishable_key: {credentials.publishable_key}\n"
          "Store the keys now: they are kept only as hashes and cannot be shown again.")


def _evaluate(args, settings: Settings) -> int:
    from trooply.tools.evaluation import (
        RANKED,
        compare_runtimes,
        format_comparison,
        format_report,
        run_benchmark,
        run_evaluation,
    )

    if (args.dataset is None) == (args.catalog is None or args.queries is None) or (args.dataset and args.catalog):
        print("error: `trooply eval` takes --catalog and --queries, or --dataset", file=sys.stderr)
        return 2
    chosen = {"clip_model": args.model, "clip_pretrained": args.pretrained}
    settings = settings.updated(**{name: value for name, value in chosen.items() if value is not None})

    def evaluate(chosen: Settings) -> dict[str, dict]:
        if args.dataset is not None:
            return run_benchmark(chosen, args.dataset, args.layout, args.profile, args.max_queries, args.concurrency)
        return run_evaluation(chosen, args.catalog, args.queries, args.concurrency)

    if args.runtime is not None:
        reports = compare_runtimes(evaluate, settings, args.runtime)
        print(json.dumps(reports, indent=2) if args.json else format_comparison(reports))
        return 0
    report = evaluate(settings)
    report.pop(RANKED, None)  # the ids behind the figures: only a comparison of runtimes reads them
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _import(args, settings: Settings) -> int:
    from rich.console import Console

    from trooply.catalog.imports import format_of
    from trooply.tools.bulk_import import LocalCatalog, RemoteCatalog, print_summary, run_import

    if (args.url is None) == (args.tenant is None) or (args.url and not args.key):
        print("error: `trooply import` takes --tenant TENANT_ID (this installation), or --url URL with --key "
              "(or $TROOPLY_API_KEY)", file=sys.stderr)
        return 2
    if not 1 <= args.batch_size <= 1000:
        print("error: --batch-size must lie between 1 and 1000", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"error: no file {args.file}", file=sys.stderr)
        return 2
    fmt = format_of(args.file.name, args.format)
    skip_unchanged = not args.force
    target = (RemoteCatalog(args.url, args.key, skip_unchanged) if args.url
              else LocalCatalog(settings, args.tenant, skip_unchanged, fmt))
    try:
        result = run_import(args.file, fmt, target, Console(stderr=True), args.batch_size)
    except KeyboardInterrupt:
        print("\ninterrupted: queued products keep their place; run the same command again to resume",
              file=sys.stderr)
        return 130
    finally:
        target.close()
    if args.json:
        print(json.dumps(result))
    else:
        print_summary(result, Console(highlight=False, soft_wrap=True))
    # Scripts can tell a clean import from one that needs a look.
    return 1 if result["rejected"] or result["failed"] else 0


def _feeds(args, _settings: Settings) -> int:
    from trooply.tools.bulk_import import RemoteCatalog
    from trooply.tools.feeds_cli import add_feed, list_feeds, sync_feed

    if not args.key:
        print("error: `trooply feeds` takes the tenant's secret key: --key or $TROOPLY_API_KEY", file=sys.stderr)
        return 2
    server = RemoteCatalog(args.url, args.key, skip_unchanged=True)
    try:
        if args.action == "list":
            for feed in list_feeds(server.call):
                print(json.dumps(feed))
            return 0
        if args.action == "add":
            print(json.dumps(add_feed(server.call, args.feed_url, args.format, args.schedule, args.delete_missing)))
            return 0
        sync = sync_feed(server.call, args.feed_id, args.wait, on_wait=lambda running: print(
            f"\r{running['status']}: {running['counts']}", end="", file=sys.stderr, flush=True))
        if args.wait:
            print(file=sys.stderr)
        print(json.dumps(sync))
        return 1 if sync["status"] == "failed" else 0
    finally:
        server.close()


def _reindex(args, settings: Settings) -> None:
    from trooply.container import Container

    container = Container(settings)
    container.db.migrate()
    try:
        job_id = container.catalog.reindex(args.tenant_id)
    finally:
        container.stop()
    where = "the Celery workers" if settings.redis_url else "the next `trooply serve`"
    print(f"queued job {job_id} for {where}" if job_id else "the tenant has no products")


def _duplicates(args, settings: Settings) -> int:
    import time

    from trooply.container import Container
    from trooply.duplicates.schemas import MIN_THRESHOLD

    if not MIN_THRESHOLD <= args.threshold <= 1.0:
        print(f"error: --threshold must lie between {MIN_THRESHOLD} and 1", file=sys.stderr)
        return 2
    container = Container(settings)
    container.db.migrate()
    started = time.perf_counter()
    try:
        container.tenants.get_plan(args.tenant_id)  # an unknown tenant is an error, not an empty report
        report = container.duplicates.report(args.tenant_id, args.threshold, progress=lambda done: print(
            f"\r{done:,} products compared", end="", file=sys.stderr, flush=True))
    finally:
        container.stop()
    with nullcontext(sys.stdout) if args.out == "-" else open(args.out, "w", encoding="utf-8") as out:
        for group in report.groups:
            out.write(json.dumps(group.as_dict()) + "\n")
    grouped = sum(len(group.products) for group in report.groups)
    print(f"\n{len(report.groups):,} groups holding {grouped:,} of {report.products_scanned:,} products "
          f"(cosine >= {args.threshold:g}) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
