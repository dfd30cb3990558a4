"""An empty write is a no-op on the server's store: a promotion's catch-up pass whose stale points were all
deleted meanwhile writes nothing (Qdrant refuses an empty upsert with 'Empty update request')."""

from qdrant_client import QdrantClient, models

from trooply.index.server import CollectionStore
from trooply.vectors import VectorSpace

SPACE = VectorSpace("empty-writes", 4)


def test_an_empty_upsert_is_a_no_op_on_the_server_store() -> None:
    client = QdrantClient(":memory:")
    client.create_collection("c", vectors_config={SPACE.name: models.VectorParams(
        size=SPACE.size, distance=models.Distance.COSINE)})
    CollectionStore(client, "c", SPACE.name).upsert([])
    assert client.count("c").count == 0

