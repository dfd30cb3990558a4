"""One search request on its way through the pipeline: made once, before any work, and passed to every step."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from trooply.index.base import Condition
from trooply.search.schemas import QueryTimingsOut, SearchOptions

Result = TypeVar("Result")


@dataclass
class SearchContext:
    tenant_id: str
    options: SearchOptions
    conditions: list[Condition]  # the request's own filters, validated before any model runs
    interpret: bool = True  # read price, stock, colour and family phrases out of the words
    keyword_weight: float | None = None  # text, voice and fusion: the request's (None: the profile's)
    started: float = field(default_factory=time.perf_counter)
    model_ms: float = 0.0
    transcribe_ms: float = 0.0

    def in_model(self, encode: Callable[[], Result]) -> Result:
        """Runs a CLIP forward pass, counting its time in the response's `timings.model_ms`."""
        result, spent_ms = _measured(encode)
        self.model_ms += spent_ms
        return result

    def in_transcriber(self, transcribe: Callable[[], Result]) -> Result:
        result, spent_ms = _measured(transcribe)
        self.transcribe_ms += spent_ms
        return result

    def took_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 2)

    def timings(self) -> QueryTimingsOut:
        return QueryTimingsOut(model_ms=round(self.model_ms, 2), transcribe_ms=round(self.transcribe_ms, 2))


def _measured(call: Callable[[], Result]) -> tuple[Result, float]:
    began = time.perf_counter()
    result = call()
    return result, (time.perf_counter() - began) * 1000
