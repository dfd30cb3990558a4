"""A periodic job on a daemon thread, for the embedded shape (Celery beat does this in the others)."""

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicTask:
    def __init__(self, interval_s: float, job: Callable[[], object], name: str) -> None:
        self._interval = interval_s
        self._job = job
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(30)

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._job()
            except Exception:  # the next round may succeed; a failing refresh must not end the thread
                log.exception("%s failed", self._thread.name)
