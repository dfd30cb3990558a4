"""Near-duplicate groups through the index: every product's neighbours above the threshold, a batch of
products per index call, then the connected groups of those pairs. Never an all-pairs loop in Python: the
index does the comparing (with its HNSW graph beyond `index_optimize_threshold` products)."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trooply.index.base import IndexPoint, VectorIndex
from trooply.index.images import image_named, image_rows

# Qdrant Edge holds the GIL for a whole call: an embedded scan must leave the API room between its calls.
# Batching barely changes throughput (19k exhaustive products: 12 per call is 7% slower than 64, with the
# longest call 42 ms instead of 262 ms), so calls are kept about this short.
CALL_BUDGET_S = 0.05


@dataclass(frozen=True)
class DuplicatePair:
    a: str
    b: str
    similarity: float
    # The near-identical images ({"url", "position"}): for products of several images, which two they share.
    a_image: dict[str, Any] | None = None
    b_image: dict[str, Any] | None = None


@dataclass
class DuplicateGroup:
    products: list[str]
    max_similarity: float
    pairs: list[DuplicatePair] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"products": self.products, "max_similarity": self.max_similarity,
                "pairs": [{"a": p.a, "b": p.b, "similarity": p.similarity, "a_image": p.a_image,
                           "b_image": p.b_image} for p in self.pairs]}


@dataclass
class DuplicateReport:
    groups: list[DuplicateGroup]
    products_scanned: int


def find_duplicates(index: VectorIndex, tenant_id: str, threshold: float, max_neighbours: int, batch_size: int,
                    progress: Callable[[int], None] | None = None) -> DuplicateReport:
    """`batch_size` is the most products per index call: calls start small and grow while they take under
    CALL_BUDGET_S."""
    pairs: dict[tuple[str, str], DuplicatePair] = {}
    scanned, offset, size = 0, None, min(batch_size, 8)
    while True:
        page = index.scroll(tenant_id, size, offset)
        # Every image of every product: two products sharing a near-identical image (any of theirs) are a pair.
        views = [(point, row, IndexPoint(point.product_id, vector, point.payload))
                 for point in page.points for row, vector in enumerate(image_rows(point.images, point.vector))]
        began = time.perf_counter()
        found = index.neighbours(tenant_id, [view for _, _, view in views], threshold, max_neighbours)
        size = _next_size(size, batch_size, time.perf_counter() - began)
        for (point, row, _), hits in zip(views, found, strict=True):
            for hit in hits:
                _keep_closest(pairs, DuplicatePair(point.product_id, hit.product_id, round(min(hit.score, 1.0), 4),
                                                   image_named(point.payload, row),
                                                   image_named(hit.payload, hit.image_position)))
        scanned += len(page.points)
        if progress is not None:
            progress(scanned)
        offset = page.next_offset
        if offset is None:
            return DuplicateReport(group_pairs(pairs), scanned)


def _keep_closest(pairs: dict[tuple[str, str], DuplicatePair], pair: DuplicatePair) -> None:
    """A pair once, a before b, with its closest two images."""
    if pair.a > pair.b:
        pair = DuplicatePair(pair.b, pair.a, pair.similarity, pair.b_image, pair.a_image)
    held = pairs.get((pair.a, pair.b))
    if held is None or pair.similarity > held.similarity:
        pairs[pair.a, pair.b] = pair


def _next_size(size: int, most: int, elapsed: float) -> int:
    # An exhaustive shard (under index_optimize_threshold products) costs far more per query than a graph.
    wanted = int(size * CALL_BUDGET_S / elapsed) if elapsed > 0 else most
    return max(1, min(most, 2 * size, wanted))


def group_pairs(pairs: dict[tuple[str, str], DuplicatePair]) -> list[DuplicateGroup]:
    """Connected groups (A~B and B~C make one group of three), largest first, then the closest."""
    parent: dict[str, str] = {}

    def root(product: str) -> str:
        parent.setdefault(product, product)
        while parent[product] != product:
            parent[product] = parent[parent[product]]  # path halving
            product = parent[product]
        return product

    for a, b in pairs:
        parent[root(a)] = root(b)
    members: dict[str, list[str]] = {}
    for product in parent:
        members.setdefault(root(product), []).append(product)
    links: dict[str, list[DuplicatePair]] = {}
    for (a, _b), pair in pairs.items():
        links.setdefault(root(a), []).append(pair)
    groups = []
    for key, products in members.items():
        found = sorted(links[key], key=lambda p: (-p.similarity, p.a, p.b))
        groups.append(DuplicateGroup(sorted(products), found[0].similarity, found))
    groups.sort(key=lambda g: (-len(g.products), -g.max_similarity, g.products[0]))
    return groups
