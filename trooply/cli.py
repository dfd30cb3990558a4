"""The `trooply` command: serve, worker, migrate, tenants, keys, reindex."""

import argparse
import json
import sys
from pathlib import Path

from trooply.config import PLANS, Settings
from trooply.errors import TrooplyError
from trooply.observability import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_format if args.run in (_serve, _worker, _beat) else "text", settings.log_level)
    try:
        return args.run(args, settings) or 0
    except TrooplyError as error:
        print(f"error [{error.code}]: {error.message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trooply", description="Self-hosted visual search for ecommerce")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the API (migrates first; embedded workers without Redis)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run a Celery ingest worker (needs TROOPLY_REDIS_URL)")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])
    worker.set_defaults(run=_worker)

    commands.add_parser("beat", help="run Celery beat: the periodic popularity refresh (needs TROOPLY_REDIS_URL)"
                        ).set_defaults(run=_beat)

    commands.add_parser("migrate", help="apply the SQL schema migrations").set_defaults(run=_migrate)

    tenants = commands.add_parser("tenants", help="manage tenants").add_subparsers(required=True, metavar="ACTION")
    create = tenants.add_parser("create", help="create a tenant and print its keys once")
    create.add_argument("name")
    create.add_argument("--plan", choices=PLANS, default="free")
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=_create_tenant)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(required=True, metavar="ACTION")
    rotate = keys.add_parser("rotate", help="revoke a tenant's keys and print new ones once")
    rotate.add_argument("tenant_id")
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(run=_rotate_keys)

    evaluate = commands.add_parser("eval", help="Recall@1/@10 and nDCG@10, raw cosine vs the full pipeline")
    evaluate.add_argument("--catalog", type=Path, required=True, help="JSONL, one product per line (as POSTed)")
    evaluate.add_argument("--queries", type=Path, required=True,
                          help='JSONL: {"query" | "image_url", "relevant": [ids], "profile"?, "filters"?}')
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(run=_evaluate)

    reindex = commands.add_parser("reindex", help="drop a tenant's vectors and encode every product again")
    reindex.add_argument("tenant_id")
    reindex.set_defaults(run=_reindex)
    return parser


def _serve(args, settings: Settings) -> None:
    import uvicorn

    from trooply.api.app import create_app

    app = create_app(settings)
    # The model loads here, not in uvicorn's start-up, so that weights it cannot load are main()'s one-line
    # error instead of uvicorn's traceback; the start-up then finds it loaded.
    app.state.container.encoder
    # Our middleware writes the access log (JSON, with the request id): uvicorn's own is off.
    # proxy_headers off: the client address is ours to derive, from trusted proxies only (api/limits.py).
    uvicorn.run(app, host=args.host or settings.host, port=args.port or settings.port,
                access_log=False, log_config=None, proxy_headers=False)


def _worker(args, settings: Settings) -> int:
    if not settings.redis_url:
        print("error: `trooply worker` needs TROOPLY_REDIS_URL (without it, `trooply serve` runs "
              "its own in-process workers)", file=sys.stderr)
        return 2
    from workers.celery_app import app

    app.worker_main(["worker", "--loglevel=INFO", f"--concurrency={args.concurrency}", f"--pool={args.pool}"])
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
    from trooply.db import Database

    Database(settings.sql_url).migrate()
    print("database is at the latest schema")


def _tenant_service(settings: Settings):
    from trooply.db import Database
    from trooply.tenancy.service import TenantService

    db = Database(settings.sql_url)
    db.migrate()
    return TenantService(db)


def _create_tenant(args, settings: Settings) -> None:
    _print_credentials(_tenant_service(settings).create_tenant(args.name, args.plan), args.json)


def _rotate_keys(args, settings: Settings) -> None:
    _print_credentials(_tenant_service(settings).rotate_keys(args.tenant_id), args.json)
    # Running servers are other processes: each trusts a key it already checked for its own cache time.
    print(f"The old keys are revoked now; running servers refuse them within {settings.key_cache_seconds:g} s "
          "(TROOPLY_KEY_CACHE_SECONDS).", file=sys.stderr if args.json else sys.stdout)


def _print_credentials(credentials, as_json: bool) -> None:
    if as_json:
        print(json.dumps(vars(credentials)))
        return
    print(f"tenant_id:       {credentials.tenant_id}\nsecret_key:      {credentials.secret_key}\n"
          f"publishable_key: {credentials.publishable_key}\n"
          "Store the keys now: they are kept only as hashes and cannot be shown again.")


def _evaluate(args, settings: Settings) -> None:
    from trooply.ranking.evaluation import format_report, run_evaluation

    report = run_evaluation(settings, args.catalog, args.queries)
    print(json.dumps(report, indent=2) if args.json else format_report(report))


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


if __name__ == "__main__":
    sys.exit(main())
