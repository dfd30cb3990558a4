"""A heavy part (a model, the ingest pipeline) opened on first use, once, whoever asks first."""

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Part = TypeVar("Part")


class Lazy(Generic[Part]):
    """Calling it opens the part the first time and returns the same part ever after. Services take it as a
    `Callable[[], Part]`, so a process that never uses the part (`trooply migrate`, an API process of the
    Celery shape) never pays for it."""

    def __init__(self, open_part: Callable[[], Part]) -> None:
        self._open_part = open_part
        self._part: Part | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Part:
        with self._lock:
            if self._part is None:
                self._part = self._open_part()
            return self._part

    @property
    def opened(self) -> bool:
        return self._part is not None

    def close(self, close_part: Callable[[Part], object]) -> None:
        """Closes the part if it was ever opened; never opens it only to close it. The closed part stays:
        a late caller gets its "closed" error rather than a second copy opened behind the shutdown."""
        with self._lock:
            part = self._part
        if part is not None:
            close_part(part)
