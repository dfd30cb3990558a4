"""The Celery application of the single-host shape: Redis broker, late acks, at-least-once delivery.

Tasks are thin: they run the functions the container registers, as the embedded pool does (workers/tasks.py).
"""

import logging
import threading
import time

from celery import Celery
from celery.signals import worker_process_init, worker_ready

from trooply.config import Settings
from trooply.container import Container
from trooply.feedback.retention import RETENTION_SWEEP_SECONDS
from trooply.tasks.names import FEEDS_DUE_TASK, POPULARITY_TASK, RETENTION_TASK

log = logging.getLogger(__name__)
settings = Settings()

app = Celery("trooply", broker=settings.redis_url, include=["workers.tasks"])
app.conf.update(
    task_acks_late=True,  # a task lost with its worker is delivered again
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    # Redelivery after a crash waits for this timeout; the stale-item sweep below is the faster net.
    broker_transport_options={"visibility_timeout": 3600},
    # `trooply beat` sends this; any worker runs it.
    beat_schedule={"refresh-popularity": {"task": POPULARITY_TASK,
                                          "schedule": settings.ranking.popularity_refresh_seconds},
                   "sync-due-feeds": {"task": FEEDS_DUE_TASK, "schedule": settings.feeds.schedule_check_seconds},
                   "analytics-retention": {"task": RETENTION_TASK, "schedule": RETENTION_SWEEP_SECONDS}},
)

_container: Container | None = None
_container_lock = threading.Lock()
SWEEP_INTERVAL_S = 300.0  # each sweep resends what is unfinished: the tasks are idempotent
STALE_AFTER_S = 900.0


def container() -> Container:
    """One container per worker process, built after fork so each child owns its model.

    With Qdrant Edge (no TROOPLY_QDRANT_URL) only one process may own the index: run the worker
    with `--pool threads` or `solo`; production runs prefork children against the Qdrant server.
    """
    global _container
    with _container_lock:
        if _container is None:
            _container = Container(settings)
        return _container


@worker_process_init.connect
def _init_child(**_kwargs) -> None:
    import torch

    torch.set_num_threads(settings.runtime.torch_threads or 1)  # one thread per child; the children are the parallelism


@worker_ready.connect
def _resume_unfinished(**_kwargs) -> None:
    """The SQL table is the source of truth: queue again whatever was accepted but never finished."""
    main = Container(settings)
    main.prepare()
    main.catalog.resume_unfinished()
    main.admin.resume_purges()
    main.admin.languages.resume()
    main.model_migration.resume_unfinished()
    main.colour_refresh.start()  # stored colours older than the colour signal (none once current), and unfinished
    threading.Thread(target=_sweep_forever, args=(main,), name="stale-sweep", daemon=True).start()


def _sweep_forever(main: Container) -> None:
    """As the embedded server's sweeps: work whose message was lost (feed syncs included), tenants deleted by the
    CLI while no worker ran, and a model migration's tenants created since it began."""
    sweeps = {"stale ingest": lambda: main.catalog.resume_unfinished(stale_after=STALE_AFTER_S),
              "tenant purge": main.admin.resume_purges, "model migration": main.model_migration.resume_unfinished,
              "tenant language": main.admin.languages.resume,
              "feed sync": lambda: main.feeds.resume_unfinished(stale_only=True)}
    while True:  # a daemon thread: it ends with the worker process
        time.sleep(SWEEP_INTERVAL_S)
        for name, sweep in sweeps.items():
            try:
                sweep()
            except Exception:  # the broker or database may be briefly away; try again next round
                log.exception("%s sweep failed", name)
