"""What goes on the page after re-ranking: at most `group_size` variants per group, then, with `diversity`,
maximal marginal relevance over the stored vectors."""

from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from trooply.index.filters import field_value, shown_value
from trooply.ranking.engine import RankedCandidate


@dataclass
class PageEntry:
    candidate: RankedCandidate
    group: Any = None  # the value grouped on, as the merchant sent it (None: ungrouped)


def grouped(candidates: list[RankedCandidate], field: str | None, size: int) -> list[PageEntry]:
    """The best `size` candidates of each value of `field`, best first. A product without a value is a
    group of its own: a missing group id never hides a product."""
    if field is None:
        return [PageEntry(candidate) for candidate in candidates]
    taken: Counter = Counter()
    page = []
    for candidate in candidates:
        key = field_value(candidate.hit.payload, field)  # normalised, as filters match it
        if key is not None:
            if taken[key] >= size:
                continue
            taken[key] += 1
        page.append(PageEntry(candidate, shown_value(candidate.hit.payload, field) if key is not None else None))
    return page


def diversified(page: list[PageEntry], diversity: float, limit: int) -> list[PageEntry]:
    """Maximal marginal relevance: each pick maximises (1 - diversity) * score - diversity * its highest
    cosine to the picks before it. 0 keeps the ranking; 1 picks the best, then the most different."""
    if diversity <= 0 or len(page) <= 1:
        return page[:limit]
    # Diversity asks the index for the hits' vectors.
    vectors = np.stack(cast(list[np.ndarray], [entry.candidate.hit.vector for entry in page]))
    similarity = np.clip(vectors @ vectors.T, 0.0, 1.0)
    scores = np.array([entry.candidate.score for entry in page])
    closest = np.zeros(len(page))
    open_ = np.ones(len(page), dtype=bool)
    picks: list[int] = []
    while len(picks) < min(limit, len(page)):
        value = np.where(open_, (1 - diversity) * scores - diversity * closest, -np.inf)
        pick = int(np.argmax(value))  # ties go to the better-ranked candidate
        picks.append(pick)
        open_[pick] = False
        closest = np.maximum(closest, similarity[pick])
    return [page[i] for i in picks]
