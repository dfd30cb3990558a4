"""The vector space of an embedding model: what an index is built for and a model encodes into."""

from dataclasses import dataclass

from trooply.errors import IndexModelMismatch


@dataclass(frozen=True)
class VectorSpace:
    """The model a collection was built with: its name and vector size."""

    name: str
    size: int

    def check_matches(self, stored: "VectorSpace", where: str) -> None:
        if stored != self:
            raise IndexModelMismatch(
                f"{where} was built with model '{stored.name}' ({stored.size}-d) but the service "
                f"runs '{self.name}' ({self.size}-d); run `trooply reindex TENANT` to rebuild it")
