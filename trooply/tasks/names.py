"""Every task's name, declared once. The names are the contract with messages already queued (and with Celery
beat's schedule): they never change. The container registers one function per name (`Container.tasks`), which
both queue shapes run; workers/tasks.py gives Celery one task per name from `TASK_NAMES`."""

from trooply.tasks.queue import background_task

# Ingest batches: the default queue, many at once, short.
INGEST_TASK = "trooply.ingest_batch"
# Long-running background work: a thread of its own embedded, a Celery queue of its own (`background_task`).
SCAN_TASK = background_task("trooply.scan_duplicates")
PURGE_TASK = background_task("trooply.purge_tenant")
REENCODE_TASK = background_task("trooply.model_reencode_tenant")
DROP_SPACE_TASK = background_task("trooply.model_drop_space")
COLOUR_REFRESH_TASK = background_task("trooply.colour_refresh")
FEED_SYNC_TASK = background_task("trooply.sync_feed")
RETOKENISE_TASK = background_task("trooply.retokenise_tenant")  # a tenant's words in its new language
# Sent by `trooply beat` (workers/celery_app.py); embedded, a thread of `trooply serve` runs the same function.
POPULARITY_TASK = "trooply.refresh_popularity"
FEEDS_DUE_TASK = "trooply.sync_due_feeds"  # short: it only queues the due syncs
RETENTION_TASK = "trooply.analytics_retention"

TASK_NAMES = (INGEST_TASK, SCAN_TASK, PURGE_TASK, REENCODE_TASK, DROP_SPACE_TASK, COLOUR_REFRESH_TASK, FEED_SYNC_TASK,
              RETOKENISE_TASK, POPULARITY_TASK, FEEDS_DUE_TASK, RETENTION_TASK)
