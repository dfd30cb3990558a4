"""Sending a background task at most once per process while it is queued or running here."""

import threading
from collections.abc import Sequence
from typing import Any

from trooply.tasks.queue import Dispatcher


class SendOnce:
    """Sweeps resend unfinished work; embedded, this process runs the task and sees it end, so a key already
    queued is not sent twice. With Celery a worker runs it and this process never sees it end: every send goes
    out, and the tasks are idempotent. No dispatcher (the CLI beside an embedded server): nothing is sent."""

    def __init__(self, dispatcher: Dispatcher | None) -> None:
        self._dispatcher = dispatcher
        self._queued: set[str] = set()
        self._lock = threading.Lock()

    def send(self, key: str, task: str, args: Sequence[Any], delay: float = 0.0) -> bool:
        """Whether the task was sent."""
        if self._dispatcher is None:
            return False
        if self._dispatcher.runs_here:
            with self._lock:
                if key in self._queued:
                    return False
                self._queued.add(key)
        try:
            self._dispatcher.send(task, args, delay)
        except Exception:
            self.ended(key)  # not queued: the next sweep tries again
            raise
        return True

    def ended(self, key: str) -> None:
        """The task body calls this when it returns: the next sweep may send it again."""
        with self._lock:
            self._queued.discard(key)
