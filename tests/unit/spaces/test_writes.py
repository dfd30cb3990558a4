"""Ingest's write to every live space (spaces/writes.py), on two real indexes (the Qdrant server's API in memory):
the active space stores every product, another space's failure is a miss handed to the migration, never an error."""

import numpy as np
import pytest
from PIL import Image
from qdrant_client import QdrantClient

from trooply.index.base import IndexPoint
from trooply.index.server import QdrantServerIndex
from trooply.spaces.live import LiveSpaces
from trooply.spaces.state import ModelSnapshot, ModelSpec
from trooply.spaces.writes import SpaceWriter
from trooply.vectors import VectorSpace

ACTIVE = ModelSpec("active-model", "random", VectorSpace("clip-active", 8))
TARGET = ModelSpec("target-model", "random", VectorSpace("clip-target", 4))
TENANT = "ten_writes"


class ShadeEncoder:
    """A vector per image from its red shade: enough to tell which image a stored row came from."""

    def __init__(self, size: int, broken: bool = False) -> None:
        self.size, self.broken = size, broken

    def encode_images(self, images, priority: int = 0) -> np.ndarray:
        if self.broken:
            raise RuntimeError("the model is gone")
        rows = np.zeros((len(images), self.size), np.float32)
        for row, image in zip(rows, images, strict=True):
            row[image.getpixel((0, 0))[0] % self.size] = 1.0
        return rows


class RecordedMisses:
    def __init__(self, clears: bool = False) -> None:
        self.recorded: dict[str, tuple[str, str]] = {}
        self.cleared: list[str] = []
        self.cutovers = 0
        self._clears = clears

    def record_failures(self, tenant_id: str, errors: dict[str, tuple[str, str]]) -> None:
        self.recorded |= errors

    def clear_failures(self, session, tenant_id: str, product_ids: list[str]) -> bool:
        self.cleared += product_ids
        return self._clears

    def cut_over_when_ready(self) -> bool:
        self.cutovers += 1
        return True


@pytest.fixture
def spaces():
    clients = {spec.space: QdrantClient(":memory:") for spec in (ACTIVE, TARGET)}
    state = {"now": ModelSnapshot(ACTIVE, target=TARGET)}
    live = LiveSpaces(lambda: state["now"], lambda space: QdrantServerIndex(clients[space], space))
    yield live, state
    live.close()
    for client in clients.values():
        client.close()


def shade(red: int) -> Image.Image:
    return Image.new("RGB", (4, 4), (red, 0, 0))


def writer_of(live: LiveSpaces, missed: RecordedMisses, broken_target: bool = False) -> SpaceWriter:
    encoders = {ACTIVE: ShadeEncoder(8), TARGET: ShadeEncoder(4, broken=broken_target)}
    return SpaceWriter(live, encoders.__getitem__, missed)


def point(product_id: str, vector: np.ndarray) -> IndexPoint:
    return IndexPoint(product_id, vector, {"title": product_id})


def test_every_product_reaches_both_spaces_with_every_image_and_a_cleared_failure_checks_the_cutover(spaces):
    live, _ = spaces
    missed = RecordedMisses(clears=True)
    batch = writer_of(live, missed).batch()
    assert not batch.only_active
    # "shoe" has a main image and an extra one; "boot" one image. Main images first.
    _, vectors = batch.encode([shade(1), shade(2), shade(3)], ["shoe", "boot", "shoe"])
    assert vectors.shape == (3, 8)
    assert batch.store(None, TENANT, [point("shoe", vectors[0]), point("boot", vectors[1])]) == {}
    batch.settle(TENANT)

    stored = {p.product_id: p for p in live.index_of(TARGET.space).retrieve(TENANT, ["shoe", "boot"])}
    assert set(stored) == {"shoe", "boot"} and stored["shoe"].payload["title"] == "shoe"
    assert np.argmax(stored["shoe"].vector) == 1 and stored["shoe"].images.shape == (2, 4)
    assert np.argmax(stored["shoe"].images[1]) == 3 and stored["boot"].images is None
    assert {p.product_id for p in live.retrieve(TENANT, ["shoe", "boot"])} == {"shoe", "boot"}  # the active one
    assert missed.cleared == ["shoe", "boot"] and missed.cutovers == 1 and missed.recorded == {}


def test_a_second_model_that_fails_leaves_the_products_stored_in_the_active_space_and_misses_them(spaces):
    live, _ = spaces
    missed = RecordedMisses()
    batch = writer_of(live, missed, broken_target=True).batch()
    _, vectors = batch.encode([shade(1), shade(2)], ["shoe", "boot"])
    misses = batch.store(None, TENANT, [point("shoe", vectors[0]), point("boot", vectors[1])])
    assert {pid: error.code for pid, error in misses.items()} == {"shoe": "second_model_failed",
                                                                   "boot": "second_model_failed"}
    assert all(error.transient for error in misses.values())
    assert missed.recorded == {}  # only once the transaction commits
    batch.settle(TENANT)

    assert {p.product_id for p in live.retrieve(TENANT, ["shoe", "boot"])} == {"shoe", "boot"}
    assert live.index_of(TARGET.space).retrieve(TENANT, ["shoe", "boot"]) == []
    assert set(missed.recorded) == {"shoe", "boot"} and missed.cleared == [] and missed.cutovers == 0


def test_a_migration_that_began_while_the_batch_encoded_misses_what_the_batch_stored(spaces):
    live, state = spaces
    state["now"] = ModelSnapshot(ACTIVE)
    missed = RecordedMisses()
    batch = writer_of(live, missed).batch()
    assert batch.only_active
    _, vectors = batch.encode([shade(1)], ["shoe"])
    state["now"] = ModelSnapshot(ACTIVE, target=TARGET)  # `trooply models migrate` lands here
    misses = batch.store(None, TENANT, [point("shoe", vectors[0])])
    batch.settle(TENANT)

    assert [error.code for error in misses.values()] == ["second_model_failed"] and set(missed.recorded) == {"shoe"}
    assert live.index_of(TARGET.space).retrieve(TENANT, ["shoe"]) == []
