"""The model state as every process sees it: an immutable snapshot, read from SQL with a short cache."""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trooply.vectors import VectorSpace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """One CLIP model: how to load it (`model`, `pretrained`) and the vector space it encodes into."""

    model: str
    pretrained: str
    space: VectorSpace

    @classmethod
    def of(cls, stored: dict[str, Any]) -> "ModelSpec":
        return cls(stored["model"], stored["pretrained"], VectorSpace(stored["space"], stored["dim"]))

    def stored(self) -> dict[str, Any]:
        return {"model": self.model, "pretrained": self.pretrained, "space": self.space.name, "dim": self.space.size}


@dataclass(frozen=True)
class ModelSnapshot:
    active: ModelSpec
    target: ModelSpec | None = None  # being built by a migration
    previous: ModelSpec | None = None  # replaced by a cutover, kept until cleanup
    cutover: str = "auto"

    @property
    def second(self) -> ModelSpec | None:
        """The other model every write must keep current: the target while migrating, the previous one until
        cleanup (so a rollback finds it complete). The same model on both sides of a cutover, so a process whose
        cache is a moment old still writes both."""
        return self.target or self.previous

    @property
    def written(self) -> list[ModelSpec]:
        return [self.active] + ([self.second] if self.second is not None else [])


class ModelStateCache:
    """`current()` re-reads the state at most every `ttl_s`: a cutover reaches every process within that."""

    def __init__(self, read: Callable[[], ModelSnapshot], ttl_s: float) -> None:
        self._read, self._ttl_s = read, ttl_s
        self._snapshot: ModelSnapshot | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def current(self) -> ModelSnapshot:
        with self._lock:
            if self._snapshot is None or time.monotonic() - self._read_at >= self._ttl_s:
                try:
                    self._snapshot = self._read()
                except Exception:
                    if self._snapshot is None:
                        raise
                    # The database is briefly away: searches go on with the model they had.
                    log.warning("could not read the model state; keeping %s", self._snapshot.active.model,
                                exc_info=True)
                self._read_at = time.monotonic()
            return self._snapshot

    def forget(self) -> None:
        """After this process changed the state: the next read sees it."""
        with self._lock:
            self._snapshot = None
